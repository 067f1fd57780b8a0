package kvstore_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/kvtest"
)

// A follower whose leader has stepped down asks it for a read index and is
// told "not the leader": it must retry (or fail), never read its own state
// as if it were current. It used to take the refusal's empty index for an
// answer and serve a stale read (found by the robustness suite, seed 1015
// and others: a leader that removed itself refused the read round).
func TestFollowerReadRefusedByFormerLeaderIsNotStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		old := c.WaitLeader()
		fs := c.Followers()
		next, lagging := c.Index(fs[0]), c.Index(fs[1])
		if _, err := old.Put(ctx, []byte("k"), []byte("v1")); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		// The lagging follower hears nothing from the next leader, so it
		// still takes the old one for the leader.
		c.Cut(next, lagging)
		if err := c.TransferLeader(next); err != nil {
			t.Fatal(err)
		}
		for !c.Node(next).IsLeader() {
			time.Sleep(time.Millisecond)
		}
		if _, err := c.Node(next).Put(ctx, []byte("k"), []byte("v2")); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		get, err := c.Node(lagging).Get(rctx, []byte("k"))
		if err == nil && (len(get.KVs) != 1 || string(get.KVs[0].Value) != "v2") {
			t.Fatalf("linearizable read on %s returned %q at revision %d after v2 was acknowledged", c.ID(lagging), get.KVs, get.Header.Revision)
		}
		c.Heal()
	})
}
