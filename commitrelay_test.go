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

// A watcher on a follower sees a write made on the leader as soon as the
// leader can tell the follower it committed, not at the next write or the
// leader's commit timeout (commitrelay.go). Virtual time: only timers take
// time, and the commit timeout is a second long. The leader's nudge (the
// heartbeat round it starts once it applied, nudge.go) needs no timer, so
// the follower sees each write the instant it is acknowledged; with the
// nudge off, a heartbeat timer would have to fire first.
func TestFollowerWatchSeesLeaderWriteWithoutCommitTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(
			kvstore.WithRaftTiming(0, 0, 0, time.Second)))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		leader := c.WaitLeader()
		c.WaitApplied()
		from := leader.Status().Revision + 1
		followers := c.Followers()
		watches := make([]kvstore.WatchChan, len(followers))
		for i, f := range followers {
			w, err := f.Watch(ctx, []byte("k"), kvstore.WithRev(from))
			if err != nil {
				t.Fatal(err)
			}
			watches[i] = w
		}
		for i := range 3 {
			put, err := leader.Put(ctx, []byte("k"), []byte(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			for j, f := range followers {
				resp := <-watches[j]
				if took := time.Since(began); took >= 100*time.Millisecond {
					t.Fatalf("follower %s saw the put at revision %d %v after it was acknowledged", f.ID(), put.Header.Revision, took)
				} else if took != 0 {
					t.Fatalf("follower %s saw the put at revision %d %v of virtual time after it was acknowledged, want 0 (no timer)", f.ID(), put.Header.Revision, took)
				}
				if len(resp.Events) != 1 || resp.Events[0].KV.ModRevision != put.Header.Revision {
					t.Fatalf("follower %s: events %+v, want the put at revision %d", f.ID(), resp.Events, put.Header.Revision)
				}
			}
		}
	})
}

// A write through a follower is seen by the other follower's serializable
// reads without the commit timeout, and no log entry is spent on telling
// them (the nudge used to be a barrier entry): the leader's log grows by the
// write alone.
func TestFollowerLearnsCommitWithoutLogEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(
			kvstore.WithRaftTiming(0, 0, 0, time.Second)))
		ctx := context.Background()
		leader := c.WaitLeader()
		c.WaitApplied()
		before := leader.Status().CommitIndex
		followers := c.Followers()
		put, err := followers[0].Put(ctx, []byte("k"), []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		// Let every goroutine run until all are blocked: no timer fires.
		synctest.Wait()
		for _, f := range followers {
			get, err := f.Get(ctx, []byte("k"), kvstore.WithSerializable())
			if err != nil {
				t.Fatal(err)
			}
			if len(get.KVs) != 1 || get.Header.Revision != put.Header.Revision {
				t.Fatalf("follower %s read %v at revision %d, want the put at %d", f.ID(), get.KVs, get.Header.Revision, put.Header.Revision)
			}
		}
		if after := leader.Status().CommitIndex; after != before+1 {
			t.Fatalf("leader's commit index went from %d to %d for one put", before, after)
		}
	})
}
