package kvstore_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// slowRaft makes raft's timers coarse, so that a cluster lives through
// simulated days in seconds of real time; elections still take only a
// few (virtual) seconds.
var slowRaft = kvstore.WithRaftTiming(10*time.Second, 10*time.Second, 5*time.Second, 2*time.Second)

// compactRevisions returns every running member's compact revision once
// all have applied the leader's log, and fails unless they agree.
func compactRevisions(t *testing.T, c *kvtest.Cluster) int64 {
	t.Helper()
	c.WaitApplied()
	nodes := c.Nodes()
	want := nodes[0].Status().CompactRevision
	for _, n := range nodes[1:] {
		if got := n.Status().CompactRevision; got != want {
			t.Fatalf("%s compacted at %d, %s at %d", nodes[0].ID(), want, n.ID(), got)
		}
	}
	return want
}

// writeEvery puts a key through n every interval until d has passed,
// calling check after each put with the store's status; failed puts (a
// leadership moving) are retried at the next interval.
func writeEvery(t *testing.T, n func() *kvstore.Node, interval, d time.Duration, check func(st kvstore.Status)) {
	t.Helper()
	ctx := context.Background()
	for start := time.Now(); time.Since(start) < d; time.Sleep(interval) {
		node := n()
		if _, err := node.Put(ctx, []byte("config"), []byte(time.Now().String())); err == nil {
			check(node.Status())
		}
	}
}

// With no option, a node compacts periodically, keeping 5 minutes of
// history: a writer at one put every 10 seconds for two simulated days
// keeps between 5 minutes' and 10 minutes' worth of revisions (plus a
// sampling tick), and every member compacts at the same revision.
func TestAutoCompactionDefaultBoundsHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(slowRaft))
		leader := c.WaitLeader()
		const every = 10 * time.Second
		retention := kvstore.DefaultAutoCompactionRetention
		tick := retention / 10
		maxRetained := int64((2*retention+2*tick)/every) + 2
		minRetained := int64(retention/every) - 2
		start := time.Now()
		var compactions int
		var last int64
		writeEvery(t, func() *kvstore.Node { return leader }, every, 48*time.Hour, func(st kvstore.Status) {
			retained := st.Revision - st.CompactRevision
			if retained > maxRetained {
				t.Fatalf("at %v: revision %d, compacted at %d: %d revisions kept, want at most %d",
					time.Since(start), st.Revision, st.CompactRevision, retained, maxRetained)
			}
			if st.CompactRevision > 0 && retained < minRetained {
				t.Fatalf("at %v: revision %d, compacted at %d: only %d revisions kept, want 5 minutes' (%d)",
					time.Since(start), st.Revision, st.CompactRevision, retained, minRetained)
			}
			if st.CompactRevision != last {
				compactions, last = compactions+1, st.CompactRevision
			}
		})
		// One compaction every 5 minutes, less the first retention.
		if want := int(48*time.Hour/retention) - 2; compactions < want {
			t.Fatalf("%d compactions in two days, want at least %d", compactions, want)
		}
		if rev := compactRevisions(t, c); rev != last {
			t.Fatalf("members compacted at %d, the leader reported %d", rev, last)
		}
	})
}

// Periodic mode compacts at etcd's cadence, to the revisions etcd would:
// with a 10-minute retention revisions are sampled every minute, the
// first compaction comes at minute 10 (to the revision sampled when the
// node started), then one every 10 minutes to the revision sampled 10
// minutes earlier, the same on every member.
func TestAutoCompactionPeriodicRevisions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		const retention = 10 * time.Minute
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(slowRaft,
			kvstore.WithAutoCompaction(kvstore.AutoCompactionPeriodic, retention)))
		leader := c.WaitLeader()
		// sampled[m] is the revision the members sample at minute m: the
		// writes fall half a minute after each sample.
		sampled := []int64{mustRevision(t, leader)}
		for minute := 1; minute <= 65; minute++ {
			time.Sleep(time.Until(start.Add(time.Duration(minute-1)*time.Minute + 30*time.Second)))
			// Compactions happen at whole minutes; check the one just past.
			want := int64(0)
			if m := minute - 1; m >= 10 {
				want = sampled[(m/10-1)*10]
			}
			if got := compactRevisions(t, c); got != want {
				t.Fatalf("minute %d: compacted at %d, want %d (sampled %v)", minute-1, got, want, sampled)
			}
			for i := range 3 {
				mustPut(t, leader, fmt.Sprint("k", i), "v")
			}
			sampled = append(sampled, mustRevision(t, leader))
		}
	})
}

// A leader change does not restart the periodic clock: with leadership
// moving every 3 minutes, under a 10-minute retention, for three hours,
// the history stays bounded.
func TestAutoCompactionAcrossLeaderChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const retention = 10 * time.Minute
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(slowRaft,
			kvstore.WithAutoCompaction(kvstore.AutoCompactionPeriodic, retention)))
		c.WaitLeader()
		const every = 10 * time.Second
		maxRetained := int64((2*retention+2*retention/10)/every) + 2
		next := time.Now().Add(3 * time.Minute)
		var transfers, lastLeader int
		compacted := false
		writeEvery(t, c.WaitLeader, every, 3*time.Hour, func(st kvstore.Status) {
			if retained := st.Revision - st.CompactRevision; retained > maxRetained {
				t.Fatalf("revision %d, compacted at %d after %d leader changes: %d revisions kept, want at most %d",
					st.Revision, st.CompactRevision, transfers, retained, maxRetained)
			}
			compacted = compacted || st.CompactRevision > 0
			if time.Now().Before(next) {
				return
			}
			to := (c.Index(c.WaitLeader()) + 1) % 3
			if err := c.TransferLeader(to); err != nil {
				t.Fatalf("transfer to n%d: %v", to+1, err)
			}
			transfers, lastLeader = transfers+1, to
			next = time.Now().Add(3 * time.Minute)
		})
		if !compacted || transfers < 50 {
			t.Fatalf("compacted %v, %d leader changes (last to n%d)", compacted, transfers, lastLeader+1)
		}
		compactRevisions(t, c)
	})
}

// Revision mode keeps the latest N revisions, checked every 5 minutes.
func TestAutoCompactionRevisionKeepsLatest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		const keep = 100
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(slowRaft,
			kvstore.WithAutoCompaction(kvstore.AutoCompactionRevision, keep)))
		leader := c.WaitLeader()
		for round := 1; round <= 3; round++ {
			for i := range 150 * round {
				mustPut(t, leader, fmt.Sprint("k", i%7), "v")
			}
			rev := mustRevision(t, leader)
			before := compactRevisions(t, c)
			time.Sleep(time.Until(start.Add(time.Duration(round)*5*time.Minute + time.Second)))
			if got := compactRevisions(t, c); got != rev-keep {
				t.Fatalf("round %d: revision %d, compacted at %d (before %d), want %d", round, rev, got, before, rev-keep)
			}
		}
		// Fewer than N new revisions since: nothing more to discard.
		rev := compactRevisions(t, c)
		time.Sleep(5 * time.Minute)
		if got := compactRevisions(t, c); got != rev {
			t.Fatalf("idle store compacted again: %d, was %d", got, rev)
		}
	})
}

// AutoCompactionOff keeps every revision until the host compacts.
func TestAutoCompactionOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(slowRaft,
			kvstore.WithAutoCompaction(kvstore.AutoCompactionOff, 0)))
		leader := c.WaitLeader()
		writeEvery(t, func() *kvstore.Node { return leader }, time.Minute, 6*time.Hour, func(kvstore.Status) {})
		if got := compactRevisions(t, c); got != 0 {
			t.Fatalf("compacted at %d with auto-compaction off", got)
		}
		if rev := mustRevision(t, leader); rev < 6*60 {
			t.Fatalf("revision %d after 6 hours of writes", rev)
		}
	})
}
