package kvstore_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// A linearizable read on a follower that lags in applying must wait for
// the latest write even when the leader's log holds no command at or below
// its commit index any more: the tail of the log is barriers (a new leader's,
// no-ops) and a snapshot truncated the rest. The leader used to answer the
// read round with index 0 then, and the follower read its stale state.
// Found while investigating the robustness suite's stale reads (seed
// 1002); those turned out to come mostly from the refused read round
// (readindex_notleader_test.go), and this case is rarer than the suite's
// faults make it.
func TestFollowerReadAfterLeaderTruncatedCommandsIsNotStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithTrailingLogs(2)))
		ctx := context.Background()
		leader := c.WaitLeader()
		followers := c.Followers()
		slow, other := c.Index(followers[0]), followers[1]
		if _, err := leader.Put(ctx, []byte("k"), []byte("v1")); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		c.SetApplyDelay(slow, time.Second)
		if _, err := leader.Put(ctx, []byte("k"), []byte("v2")); err != nil {
			t.Fatal(err)
		}
		// A new leader appends a no-op and a barrier of its own; with two
		// trailing logs its snapshot truncates the put away.
		if err := c.TransferLeader(c.Index(other)); err != nil {
			t.Fatal(err)
		}
		for !other.IsLeader() {
			time.Sleep(time.Millisecond)
		}
		if err := c.Snapshot(c.Index(other)); err != nil {
			t.Fatal(err)
		}
		get, err := c.Node(slow).Get(ctx, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		if len(get.KVs) != 1 || string(get.KVs[0].Value) != "v2" {
			t.Fatalf("linearizable read on the lagging follower returned %q at revision %d, want v2", get.KVs, get.Header.Revision)
		}
		c.SetApplyDelay(slow, 0)
	})
}
