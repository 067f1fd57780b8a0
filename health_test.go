package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// check runs the named check of checks.
func check(t *testing.T, checks []kvstore.HealthCheck, name string, timeout time.Duration) error {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return c.Check(ctx)
		}
	}
	t.Fatalf("no check %q", name)
	return nil
}

// A member of a healthy cluster is ready and alive; once closed it is
// neither.
func TestReadyAndLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		c.WaitLeader()
		for _, n := range c.Nodes() {
			if err := n.Ready(context.Background()); err != nil {
				t.Fatalf("%s: %v", n.ID(), err)
			}
			var names []string
			for _, h := range n.ReadyChecks() {
				names = append(names, h.Name)
			}
			if got := strings.Join(names, ","); got != "leader,data_corruption,no_space,caught_up,serializable_read,linearizable_read" {
				t.Fatalf("ready checks %s", got)
			}
			if err := check(t, n.LiveChecks(), "serializable_read", time.Second); err != nil {
				t.Fatalf("%s not alive: %v", n.ID(), err)
			}
		}
		n := c.Node(0)
		live := n.LiveChecks()
		c.Stop(0)
		if err := check(t, live, "serializable_read", time.Second); !errors.Is(err, kvstore.ErrClosed) {
			t.Fatalf("a closed node's live check: %v", err)
		}
	})
}

// A node that belongs to no cluster is alive but not ready: no leader.
func TestNotReadyWithoutLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, err := transport.NewNetwork().Join("lonely")
		if err != nil {
			t.Fatal(err)
		}
		n, err := kvstore.Open("", kvstore.WithID("lonely"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = n.Ready(ctx)
		if !errors.Is(err, kvstore.ErrNotReady) || !errors.Is(err, kvstore.ErrNoLeader) || !strings.Contains(err.Error(), "leader") {
			t.Fatalf("Ready without a leader: %v", err)
		}
		if err := check(t, n.LiveChecks(), "serializable_read", time.Second); err != nil {
			t.Fatalf("a node without a cluster is alive: %v", err)
		}
	})
}

// A member restarted behind its cluster is not caught up until it has
// applied what the cluster committed, though it knows the leader at once.
func TestNotReadyWhileCatchingUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		i := c.Index(c.Followers()[0])
		c.Stop(i)
		for k := range 50 {
			if _, err := leader.Put(context.Background(), []byte(fmt.Sprint("k", k)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		c.SetApplyDelay(i, 100*time.Millisecond) // 50 entries: 5 s of virtual time
		n := c.Restart(i)
		if _, err := n.WaitLeader(context.Background()); err != nil {
			t.Fatal(err)
		}
		checks := n.ReadyChecks()
		if err := check(t, checks, "leader", time.Second); err != nil {
			t.Fatalf("leader check while catching up: %v", err)
		}
		err := check(t, checks, "caught_up", time.Second)
		if err == nil || !strings.Contains(err.Error(), "still applying the log") {
			t.Fatalf("caught_up check while 5 s behind: %v", err)
		}
		c.SetApplyDelay(i, 0)
		if err := check(t, checks, "caught_up", 10*time.Second); err != nil {
			t.Fatalf("caught_up check after the delay: %v", err)
		}
		st := n.Status()
		get, err := n.Get(context.Background(), []byte("k"), kvstore.WithPrefix(), kvstore.WithCountOnly(), kvstore.WithSerializable())
		if err != nil || get.Count != 50 {
			t.Fatalf("caught up, yet a serializable read sees %+v (%v); status %+v", get, err, st)
		}
	})
}
