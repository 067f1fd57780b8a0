package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

func TestFollowerForwardsWritesAndReadsItsOwnWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		for _, f := range c.Followers() {
			key := []byte("from-" + f.ID())
			put, err := f.Put(ctx, key, []byte("v"), kvstore.WithPrevKV())
			if err != nil {
				t.Fatal(err)
			}
			if put.Header.MemberID != f.ID() || put.PrevKV != nil {
				t.Fatalf("put through %s: %+v", f.ID(), put)
			}
			// Read-your-writes on the node that wrote, even serializable.
			get, err := f.Get(ctx, key, kvstore.WithSerializable())
			if err != nil || len(get.KVs) != 1 || get.Header.Revision < put.Header.Revision {
				t.Fatalf("serializable read after write on %s: %+v %v", f.ID(), get, err)
			}
			del, err := f.Delete(ctx, key, kvstore.WithPrevKV())
			if err != nil || del.Deleted != 1 || string(del.PrevKVs[0].Value) != "v" {
				t.Fatalf("delete through %s: %+v %v", f.ID(), del, err)
			}
		}
	})
}

// Errors of a forwarded request are the leader's, matchable with errors.Is.
func TestForwardedErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		f := c.Followers()[0]
		if _, err := f.Put(ctx, nil, []byte("v")); !errors.Is(err, kvstore.ErrEmptyKey) {
			t.Fatalf("empty key through a follower: %v", err)
		}
		if _, err := f.Put(ctx, []byte("k"), []byte("v"), kvstore.WithLease(7)); !errors.Is(err, kvstore.ErrLeaseNotFound) {
			t.Fatalf("unknown lease through a follower: %v", err)
		}
		if _, err := f.Put(ctx, []byte("k"), nil, kvstore.WithIgnoreValue()); !errors.Is(err, kvstore.ErrKeyNotFound) {
			t.Fatalf("ignore value of a missing key: %v", err)
		}
		big := make([]byte, kvstore.DefaultMaxRequestBytes)
		if _, err := f.Put(ctx, []byte("big"), big); !errors.Is(err, kvstore.ErrRequestTooLarge) {
			t.Fatalf("too large: %v", err)
		}
		if st := f.Status(); st.Revision != 1 {
			t.Fatalf("rejected writes changed the store: %+v", st)
		}
	})
}

// A linearizable read on any member sees every write acknowledged before
// it; a serializable one may not.
func TestLinearizableAndSerializableReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		f := c.Followers()[0]
		for i := range 50 {
			if _, err := leader.Put(ctx, []byte("k"), []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			get, err := f.Get(ctx, []byte("k"))
			if err != nil || string(get.KVs[0].Value) != fmt.Sprint(i) {
				t.Fatalf("linearizable read on a follower after write %d: %+v %v", i, get, err)
			}
		}

		// Cut the follower off: serializable reads answer from its stale
		// state, linearizable ones cannot finish.
		i := c.Index(f)
		c.Isolate(i)
		if _, err := leader.Put(ctx, []byte("k"), []byte("new")); err != nil {
			t.Fatal(err)
		}
		get, err := f.Get(ctx, []byte("k"), kvstore.WithSerializable())
		if err != nil || string(get.KVs[0].Value) != "49" {
			t.Fatalf("serializable read on the isolated follower: %+v %v", get, err)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := f.Get(short, []byte("k")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("linearizable read on the isolated follower: %v", err)
		}
		c.Heal()
		get, err = f.Get(ctx, []byte("k"))
		if err != nil || string(get.KVs[0].Value) != "new" {
			t.Fatalf("linearizable read after heal: %+v %v", get, err)
		}
	})
}

// Many concurrent linearizable reads share leadership confirmations and
// all see the write acknowledged before them.
func TestConcurrentLinearizableReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		if _, err := c.WaitLeader().Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, n := range c.Nodes() {
			for range 20 {
				wg.Go(func() {
					get, err := n.Get(ctx, []byte("k"))
					if err != nil || len(get.KVs) != 1 {
						t.Errorf("read on %s: %+v %v", n.ID(), get, err)
					}
				})
			}
		}
		wg.Wait()
	})
}

func TestLeaderFailoverKeepsAcknowledgedWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		old := c.WaitLeader()
		for i := range 30 {
			if _, err := old.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		stopped := c.Index(old)
		c.Stop(stopped)
		leader := c.WaitLeader()
		if leader.ID() == c.ID(stopped) {
			t.Fatal("the stopped node still leads")
		}
		get, err := leader.Get(ctx, []byte("k"), kvstore.WithPrefix(), kvstore.WithCountOnly())
		if err != nil || get.Count != 30 {
			t.Fatalf("after failover: %+v %v", get, err)
		}
		if _, err := leader.Put(ctx, []byte("after"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		back := c.Restart(stopped)
		get, err = back.Get(ctx, []byte("after"))
		if err != nil || len(get.KVs) != 1 {
			t.Fatalf("restarted old leader: %+v %v", get, err)
		}
	})
}

// A follower that was down while the leader snapshotted and truncated its
// log catches up from the snapshot.
func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		installs := &messageCounter{msg: "Installed remote snapshot"}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithLogger(slog.New(installs)),
			kvstore.WithSnapshots(16, 50*time.Millisecond, 1), kvstore.WithTrailingLogs(4)))
		ctx := context.Background()
		leader := c.WaitLeader()
		lagging := c.Index(c.Followers()[0])
		c.Stop(lagging)
		for i := range 200 {
			if _, err := leader.Put(ctx, []byte(fmt.Sprint("k", i)), []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := leader.Compact(ctx, 150); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // virtual: several snapshot intervals
		n := c.Restart(lagging)
		get, err := n.Get(ctx, []byte("k"), kvstore.WithPrefix(), kvstore.WithCountOnly())
		if err != nil || get.Count != 200 {
			t.Fatalf("lagging follower after catching up: %+v %v", get, err)
		}
		// raft logs the install just after the restore the read waited for.
		for deadline := time.Now().Add(time.Second); installs.count.Load() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the follower caught up without a snapshot")
			}
		}
		if st := n.Status(); st.CompactRevision != 150 {
			t.Fatalf("compaction did not reach the follower: %+v", st)
		}
		if _, err := n.Get(ctx, []byte("k1"), kvstore.WithRev(100)); !errors.Is(err, kvstore.ErrCompacted) {
			t.Fatalf("read below the compact revision: %v", err)
		}
	})
}

// messageCounter is a slog.Handler counting the records with one message.
type messageCounter struct {
	msg   string
	count atomic.Int64
}

func (h *messageCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *messageCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *messageCounter) WithGroup(string) slog.Handler            { return h }
func (h *messageCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.count.Add(1)
	}
	return nil
}

// Close with requests in flight: every call returns (ErrClosed or done),
// and kvtest checks that no goroutine is left.
func TestCloseWithRequestsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		f := c.Followers()[0]
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				_, err := f.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v"))
				if err != nil && !errors.Is(err, kvstore.ErrClosed) && !errors.Is(err, kvstore.ErrOutcomeUnknown) {
					t.Errorf("put during close: %v", err)
				}
				_, err = f.Get(ctx, []byte("k"))
				if err != nil && !errors.Is(err, kvstore.ErrClosed) {
					t.Errorf("get during close: %v", err)
				}
			})
		}
		c.Stop(c.Index(f))
		wg.Wait()
		if _, err := f.Get(ctx, []byte("k")); !errors.Is(err, kvstore.ErrClosed) {
			t.Fatalf("get after close: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	})
}

// A write whose deadline has passed fails with the deadline, on the leader
// and through a follower, and changes nothing.
func TestWriteWithExpiredDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		c.WaitLeader()
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		for _, n := range c.Nodes() {
			if _, err := n.Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("put through %s with an expired deadline: %v", n.ID(), err)
			}
		}
		if rev := c.WaitLeader().Status().Revision; rev != 1 {
			t.Fatalf("revision %d after expired writes", rev)
		}
	})
}

// A write through a follower returns as soon as the follower can apply it:
// the leader tells followers of the commit at once rather than at its next
// commit timeout (nudge.go). Measured in virtual time, where only timers
// take time.
func TestFollowerWriteDoesNotWaitForCommitTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(
			kvstore.WithRaftTiming(0, 0, 0, time.Second))) // a long commit timeout
		f := c.Followers()[0]
		for i := range 5 {
			began := time.Now()
			if _, err := f.Put(context.Background(), []byte("k"), []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(began); took >= 100*time.Millisecond {
				t.Fatalf("write %d through a follower took %v", i, took)
			}
		}
	})
}
