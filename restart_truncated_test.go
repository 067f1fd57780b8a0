package kvstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// TestRestartAfterTailOverwritten is the crash-restart bug of raft-wal
// v0.4.0 at the node level, on disk with each log store: a leader is cut
// off with entries nobody else has, a new leader overwrites them, and the
// old leader, healed, catches up (raft clears its log's suffix). Then it
// must restart from its data dir, twice, and serve; the whole cycle runs
// twice. With raft-wal v0.4.0 the first restart after the catch-up failed
// for good ("sealed segment has no index block").
//
// The cluster runs in a synctest bubble although its I/O is real: the test
// needs a leader that keeps leading between the faults it injects, and
// kvtest's raft timing (a 25 ms leader lease) in wall time lets a loaded
// machine, or a slow fsync, make a connected leader step down, failing a
// put with ErrOutcomeUnknown. In virtual time the clock stands still while
// any goroutine is running or in a system call, so only the injected
// faults move leadership.
func TestRestartAfterTailOverwritten(t *testing.T) {
	for _, kind := range []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) { synctest.Test(t, func(t *testing.T) { testRestartAfterTailOverwritten(t, kind) }) })
	}
}

func testRestartAfterTailOverwritten(t *testing.T, kind kvstore.LogStore) {
	c := kvtest.NewCluster(t, 3, kvtest.WithDisk(kind))
	ctx, cancel := context.WithTimeout(context.Background(), kvtest.Timeout)
	defer cancel()
	latest := ""
	put := func(n *kvstore.Node, v string) {
		t.Helper()
		if _, err := n.Put(ctx, []byte("k"), []byte(v)); err != nil {
			t.Fatalf("put %s through %s: %v", v, n.ID(), err)
		}
		latest = v
	}
	for cycle := range 2 {
		old := c.WaitLeader()
		oldIndex := c.Index(old)
		put(old, fmt.Sprintf("committed-%d", cycle))
		c.Isolate(oldIndex)
		// Proposals the cut-off leader appends to its own log only.
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer pcancel()
				if _, err := old.Put(pctx, []byte("k"), []byte(fmt.Sprintf("lost-%d-%d", cycle, w))); err == nil {
					t.Errorf("a put on a cut-off leader succeeded")
				}
			})
		}
		wg.Wait()
		// The others elect a leader whose entries take those indexes.
		next := c.WaitLeader()
		if next == old {
			t.Fatalf("cycle %d: WaitLeader returned %s, the leader that was cut off", cycle, old.ID())
		}
		for i := range 20 {
			put(next, fmt.Sprintf("overwrite-%d-%d", cycle, i))
		}
		c.Heal()
		c.WaitApplied() // the old leader has replaced its tail
		for restart := range 2 {
			c.Stop(oldIndex)
			n, err := c.TryRestart(oldIndex)
			if err != nil {
				t.Fatalf("cycle %d, restart %d of %s: %v", cycle, restart, c.ID(oldIndex), err)
			}
			resp, err := n.Get(ctx, []byte("k"))
			if err != nil {
				t.Fatalf("cycle %d, restart %d: read on %s: %v", cycle, restart, n.ID(), err)
			}
			if len(resp.KVs) != 1 || string(resp.KVs[0].Value) != latest {
				t.Fatalf("cycle %d, restart %d: %s reads %+v, want %q", cycle, restart, n.ID(), resp.KVs, latest)
			}
			put(n, fmt.Sprintf("after-restart-%d-%d", cycle, restart))
		}
	}
	c.WaitApplied()
}

// waitLeaderOtherThan waits for a ready leader among the nodes other than
// skip. kvtest's WaitLeader may still return skip when skip is not cut off:
// a leader that failed to store an entry (a full disk) steps down
// asynchronously, and until it does its followers still name it.
func waitLeaderOtherThan(t *testing.T, c *kvtest.Cluster, skip int) *kvstore.Node {
	t.Helper()
	deadline := time.Now().Add(kvtest.Timeout)
	for time.Now().Before(deadline) {
		for i := range 3 {
			if n := c.Node(i); i != skip && n != nil && n.IsLeader() {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no leader among the nodes other than %s", c.ID(skip))
	return nil
}
