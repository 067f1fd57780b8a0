package kvstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// After a Compact, members reclaim the dropped versions each at its own
// pace, yet their HashKV at a revision agrees at once, while they still hold
// different amounts, and stays the same once all have reclaimed. In virtual
// time the reclaimers, which pause between batches, stay midway while the
// test does not block.
func TestHashKVWhileReclaiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const keys, batch = 20000, 1000
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithMaxTxnOps(batch)))
		n := c.WaitLeader()
		ctx := context.Background()
		for round := range 2 {
			for i := 0; i < keys; i += batch {
				var ops []kvstore.Op
				for j := i; j < i+batch; j++ {
					ops = append(ops, kvstore.OpPut(fmt.Appendf(nil, "key/%06d", j), fmt.Appendf(nil, "v%d", round)))
				}
				if _, err := n.Txn(ctx).Then(ops...).Commit(); err != nil {
					t.Fatal(err)
				}
			}
		}
		rev := n.Status().Revision
		c.WaitApplied()
		held := make([]int64, 3)
		for i, m := range c.Nodes() {
			held[i] = m.Status().StoreSize
		}
		if _, err := n.Compact(ctx, rev); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		hashes := func() (h []uint32, sizes []int64) {
			for _, m := range c.Nodes() {
				res, err := m.HashKV(rev)
				if err != nil {
					t.Fatal(err)
				}
				h, sizes = append(h, res.Hash), append(sizes, m.Status().StoreSize)
			}
			return h, sizes
		}
		midway, midSizes := hashes()
		for i := range midway {
			if midway[i] != midway[0] {
				t.Fatalf("HashKV(%d) while reclaiming: %v (store sizes %v)", rev, midway, midSizes)
			}
		}
		// Reclaiming is done when the sizes stop moving for longer than
		// a few batches take.
		deadline := time.Now().Add(kvtest.Timeout)
		last := midSizes
		for {
			time.Sleep(20 * time.Millisecond)
			done, sizes := hashes()
			if slices.Equal(sizes, last) && sizes[0] == sizes[1] && sizes[1] == sizes[2] && sizes[0] < held[0] {
				if done[0] != midway[0] {
					t.Fatalf("HashKV(%d) once reclaimed %v, while reclaiming %v", rev, done, midway)
				}
				stillHeld := false
				for i := range sizes {
					stillHeld = stillHeld || midSizes[i] > sizes[i]
				}
				if !stillHeld {
					t.Fatalf("no member held dropped versions when hashed (sizes %v, then %v): the test checked nothing", midSizes, sizes)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("members never finished reclaiming: sizes %v, before the compaction %v", sizes, held)
			}
			last = sizes
		}
	})
}
