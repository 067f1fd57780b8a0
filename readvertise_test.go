package kvstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// addressOf returns the address n's configuration records for member id,
// with "(learner)" appended for a learner ("" if id is not a member).
func addressOf(t *testing.T, n *kvstore.Node, id string) string {
	t.Helper()
	ms, err := n.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == id {
			if m.Learner {
				return m.Address + "(learner)"
			}
			return m.Address
		}
	}
	return ""
}

// waitRecorded waits, in virtual time, until every running member of c
// records member id at want ("…(learner)" for a learner).
func waitRecorded(t *testing.T, c *kvtest.Cluster, id, want string) {
	t.Helper()
	deadline := time.Now().Add(kvtest.Timeout)
	for {
		var got []string
		for _, n := range c.Nodes() {
			got = append(got, addressOf(t, n, id))
		}
		if !slices.ContainsFunc(got, func(a string) bool { return a != want }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members record %s at %v, want %s everywhere", id, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A member restarted at another address (an operator moved it) logs the
// change, has the cluster record its new address, keeping its suffrage,
// and takes part again: the others replicate to it at the new address.
func TestMovedMemberHasItsAddressRecorded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		move    func(c *kvtest.Cluster) int // the member to move
		learner bool
	}{
		{"follower", 3, func(c *kvtest.Cluster) int { return c.Index(c.Followers()[0]) }, false},
		{"leader", 3, func(c *kvtest.Cluster) int { return c.Index(c.WaitLeader()) }, false},
		{"only member", 1, func(c *kvtest.Cluster) int { return 0 }, false},
		{"learner", 3, func(c *kvtest.Cluster) int {
			i := c.AddNode()
			if err := c.Node(i).Join(context.Background(), []string{c.Address(0)}, kvstore.JoinAsLearner()); err != nil {
				t.Fatal(err)
			}
			return i
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				warnings := &warnRecorder{}
				c := kvtest.NewCluster(t, tc.size, kvtest.WithNodeOptions(kvstore.WithLogger(slog.New(warnings))))
				if _, err := c.WaitLeader().Put(ctx, []byte("before"), []byte("v")); err != nil {
					t.Fatal(err)
				}
				i := tc.move(c)
				id, old := c.ID(i), c.Address(i)
				moved := old + "-moved"
				c.Stop(i)
				if tc.size > 1 {
					if _, err := c.WaitLeader().Put(ctx, []byte("while stopped"), []byte("v")); err != nil {
						t.Fatal(err)
					}
				}
				c.Move(i, moved)
				n := c.Restart(i)
				want := moved
				if tc.learner {
					want += "(learner)"
				}
				waitRecorded(t, c, id, want)
				if msg := fmt.Sprintf("advertised address changed from %s to %s", old, moved); warnings.count(msg) != 1 {
					t.Errorf("warning %q logged %d times, want once; warnings: %q", msg, warnings.count(msg), warnings.all())
				}
				// Reachable again: a write through another member is
				// replicated to it, and it writes through the leader.
				if _, err := c.WaitLeader().Put(ctx, []byte("after"), []byte("v")); err != nil {
					t.Fatal(err)
				}
				if _, err := n.Put(ctx, []byte("through the moved member"), []byte("v")); err != nil {
					t.Fatal(err)
				}
				c.WaitApplied()
				get, err := n.Get(ctx, []byte(""), kvstore.WithFromKey(), kvstore.WithSerializable(), kvstore.WithCountOnly())
				if want := int64(3 + min(tc.size-1, 1)); err != nil || get.Count != want {
					t.Fatalf("the moved member holds %d keys (%v), want %d", get.Count, err, want)
				}
			})
		})
	}
}

// The leader records a new address only once it has reached the member
// there: while its link to the new address is cut, the cluster keeps the
// old one (which may still be the one that works); once healed, the new
// one.
func TestMovedMemberRecordedOnlyWhereTheLeaderReachesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.Index(c.WaitLeader())
		i := (leader + 1) % 3
		c.Stop(i)
		c.Move(i, "n-elsewhere")
		c.Cut(leader, i) // leader → n-elsewhere; the member reaches everyone
		c.Restart(i)
		time.Sleep(10 * time.Second) // virtual: many rounds of asking
		synctest.Wait()
		for _, n := range c.Nodes() {
			if got := addressOf(t, n, c.ID(i)); got == "n-elsewhere" {
				t.Fatalf("%s records the new address, which the leader cannot reach", n.ID())
			}
		}
		c.Heal()
		waitRecorded(t, c, c.ID(i), "n-elsewhere")
		c.WaitApplied()
	})
}

// warnRecorder is a slog.Handler keeping the messages of the records at
// warn level and above. It is safe for concurrent use.
type warnRecorder struct {
	mu       sync.Mutex
	messages []string
}

func (h *warnRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *warnRecorder) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *warnRecorder) WithGroup(string) slog.Handler                { return h }
func (h *warnRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.messages = append(h.messages, r.Message)
	return nil
}

// count returns how many records had message msg.
func (h *warnRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.messages {
		if m == msg {
			n++
		}
	}
	return n
}

// all returns the messages recorded so far.
func (h *warnRecorder) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.messages)
}
