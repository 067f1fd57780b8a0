package kvtest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

func countKeys(t *testing.T, n *kvstore.Node, serializable bool) int64 {
	t.Helper()
	opts := []kvstore.OpOption{kvstore.WithPrefix(), kvstore.WithCountOnly()}
	if serializable {
		opts = append(opts, kvstore.WithSerializable())
	}
	get, err := n.Get(context.Background(), []byte("k"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return get.Count
}

// A leader whose lease clock jumps past a lease's deadline revokes it; the
// same lease outlives the same virtual time on an unjumped clock.
func TestClockOffsetExpiresLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		g, err := leader.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Put(ctx, []byte("k"), []byte("v"), kvstore.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if n := countKeys(t, leader, false); n != 1 {
			t.Fatalf("%d keys before the clock jump, want 1", n)
		}
		c.SetClockOffset(c.Index(leader), 2*time.Minute)
		deadline := time.Now().Add(5 * time.Second)
		for countKeys(t, leader, false) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the lease outlived a leader clock jump past its TTL")
			}
			time.Sleep(10 * time.Millisecond)
		}
		c.SetClockOffset(c.Index(leader), 0)
	})
}

// A member with a slow apply lags: right after a write it has not applied
// it yet; it catches up.
func TestApplyDelayMakesAMemberLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		slow := c.Index(c.Followers()[0])
		c.SetApplyDelay(slow, time.Second)
		if _, err := leader.Put(ctx, []byte("k1"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if n := countKeys(t, c.Node(slow), true); n != 0 {
			t.Fatalf("the slow member applied the write within 200ms (%d keys)", n)
		}
		c.SetApplyDelay(slow, 0)
		c.WaitApplied()
		if n := countKeys(t, c.Node(slow), true); n != 1 {
			t.Fatalf("the slow member has %d keys after catching up, want 1", n)
		}
	})
}

// logRecorder is a slog.Handler that keeps the messages it is given.
type logRecorder struct {
	mu   *sync.Mutex
	msgs *[]string
}

func (r logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.msgs = append(*r.msgs, rec.Message)
	return nil
}
func (r logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r logRecorder) WithGroup(string) slog.Handler      { return r }

func (r logRecorder) saw(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range *r.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// A forced snapshot with few trailing logs makes a member that was cut off
// install the snapshot to catch up.
func TestSnapshotMakesALaggingMemberInstallIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := logRecorder{mu: new(sync.Mutex), msgs: new([]string)}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(
			kvstore.WithTrailingLogs(2), kvstore.WithLogger(slog.New(rec))))
		ctx := context.Background()
		leader := c.WaitLeader()
		lagging := c.Index(c.Followers()[0])
		c.Isolate(lagging)
		for i := range 20 {
			if _, err := leader.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Snapshot(c.Index(leader)); err != nil {
			t.Fatal(err)
		}
		if rec.saw("Installed remote snapshot") {
			t.Fatal("a snapshot was installed before the member could reach the leader")
		}
		c.Heal()
		c.WaitApplied()
		if n := countKeys(t, c.Node(lagging), true); n != 20 {
			t.Fatalf("the lagging member has %d keys, want 20", n)
		}
		// The member logs the install just after its state is restored.
		deadline := time.Now().Add(time.Second)
		for !rec.saw("Installed remote snapshot") {
			if time.Now().After(deadline) {
				t.Fatal("the lagging member caught up without installing the snapshot")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

func TestTransferLeaderAndRemoveAndReAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		to := c.Index(c.Followers()[1])
		if err := c.TransferLeader(to); err != nil {
			t.Fatal(err)
		}
		// The old leader publishes its step-down asynchronously.
		deadline := time.Now().Add(time.Second)
		for !c.Node(to).IsLeader() {
			if time.Now().After(deadline) {
				t.Fatalf("%s does not lead after a transfer to it", c.ID(to))
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := leader.Put(ctx, []byte("k1"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		old := c.Index(leader)
		if err := c.RemoveAndReAdd(old); err != nil {
			t.Fatal(err)
		}
		c.WaitLeader()
		c.WaitApplied()
		if n := countKeys(t, c.Node(old), true); n != 1 {
			t.Fatalf("the re-added member has %d keys, want 1", n)
		}
		members, err := c.Node(old).Members(ctx)
		if err != nil || len(members) != 3 {
			t.Fatalf("members after re-adding: %v, %v", members, err)
		}
	})
}

// CorruptValue changes one running member's value in place, revisions
// kept, and nothing else; CorruptOnRestart does the same while a restart
// replays the log; a plain restart rebuilds the store without the damage.
func TestCorruptValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithCorruptCheckInterval(0), kvstore.WithInitialCorruptCheck(false)))
		ctx := context.Background()
		leader := c.WaitLeader()
		put, err := leader.Put(ctx, []byte("k"), []byte("good"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Put(ctx, []byte("other"), []byte("x")); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		bad := c.Index(c.Followers()[0])
		if err := c.CorruptValue(bad, []byte("absent"), []byte("x")); !errors.Is(err, kvstore.ErrKeyNotFound) {
			t.Fatalf("corrupting a key that does not exist: %v, want ErrKeyNotFound", err)
		}
		read := func(i int) kvstore.KeyValue {
			t.Helper()
			res, err := c.Node(i).Get(ctx, []byte("k"), kvstore.WithSerializable())
			if err != nil || len(res.KVs) != 1 {
				t.Fatalf("%s: get: %v, %v", c.ID(i), res, err)
			}
			return res.KVs[0]
		}
		check := func(wantBad string) {
			t.Helper()
			for i := range 3 {
				kv, want := read(i), "good"
				if i == bad {
					want = wantBad
				}
				if string(kv.Value) != want || kv.ModRevision != put.Header.Revision {
					t.Fatalf("%s: k = %q at mod revision %d, want %q at %d", c.ID(i), kv.Value, kv.ModRevision, want, put.Header.Revision)
				}
			}
		}
		if err := c.CorruptValue(bad, []byte("k"), []byte("bad")); err != nil {
			t.Fatal(err)
		}
		check("bad")
		c.Stop(bad)
		if err := c.CorruptValue(bad, []byte("k"), []byte("bad")); err == nil {
			t.Fatal("CorruptValue on a stopped member succeeded")
		}
		c.Restart(bad)
		c.WaitApplied()
		check("good")
		c.Stop(bad)
		c.CorruptOnRestart(bad, []byte("k"), []byte("bad again"))
		c.Restart(bad)
		c.WaitApplied()
		check("bad again")
		c.Stop(bad) // leave it out of the cleanup's agreement check
	})
}
