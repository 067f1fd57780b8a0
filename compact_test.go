package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// Rule 17: Compact(0) on a never-compacted store succeeds and changes
// nothing; at or below the compact revision is ErrCompacted, above the
// current revision ErrFutureRevision; the response carries the current
// revision. Rule 7: the compact revision itself stays readable, below it
// reads fail, in Get and in Txn alike, on every member.
func TestCompactRule17(t *testing.T) {
	onClusters(t, func(t *testing.T, n *kvstore.Node, nodes []*kvstore.Node) {
		ctx := context.Background()
		compact := func(rev int64, want error) {
			t.Helper()
			resp, err := n.Compact(ctx, rev)
			if !errors.Is(err, want) {
				t.Fatalf("Compact(%d): %+v %v, want %v", rev, resp, err, want)
			}
			if err == nil && resp.Header.Revision != mustRevision(t, n) {
				t.Fatalf("Compact(%d): header revision %d", rev, resp.Header.Revision)
			}
		}
		compact(0, nil)
		compact(0, kvstore.ErrCompacted)
		compact(2, kvstore.ErrFutureRevision)
		mustPut(t, n, "a", "1") // 2
		mustPut(t, n, "a", "2") // 3
		mustPut(t, n, "a", "3") // 4
		compact(3, nil)
		for _, rev := range []int64{3, 2, 0, -1} {
			compact(rev, kvstore.ErrCompacted)
		}
		compact(5, kvstore.ErrFutureRevision)

		a := b("a")
		if _, err := n.Get(ctx, a, kvstore.WithRev(2)); !errors.Is(err, kvstore.ErrCompacted) {
			t.Fatalf("get below the compact revision: %v", err)
		}
		if get, err := n.Get(ctx, a, kvstore.WithRev(3)); err != nil || string(get.KVs[0].Value) != "2" || get.Header.Revision != 4 {
			t.Fatalf("get at the compact revision: %+v %v", get, err)
		}
		if _, err := n.Txn(ctx).Then(kvstore.OpGet(a, kvstore.WithRev(2))).Commit(); !errors.Is(err, kvstore.ErrCompacted) {
			t.Fatalf("read-only txn below the compact revision: %v", err)
		}
		_, err := n.Txn(ctx).Then(kvstore.OpPut(b("k"), nil), kvstore.OpGet(a, kvstore.WithRev(2))).Commit()
		if !errors.Is(err, kvstore.ErrCompacted) {
			t.Fatalf("write txn reading below the compact revision: %v", err)
		}
		if rev, s := state(t, n); rev != 4 || s != "a=3 " {
			t.Fatalf("failed txn changed the store: revision %d, %s", rev, s)
		}
		// Every member compacted: reads below fail there too.
		for _, m := range nodes {
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := m.Get(ctx, a, kvstore.WithRev(2), kvstore.WithSerializable())
				if errors.Is(err, kvstore.ErrCompacted) {
					break
				}
				// A member still behind answers ErrFutureRevision or
				// the old value.
				if err != nil && !errors.Is(err, kvstore.ErrFutureRevision) {
					t.Fatal(err)
				}
				if time.Now().After(deadline) {
					t.Fatal("a member never compacted")
				}
				time.Sleep(time.Millisecond) // virtual time
			}
		}
		compact(4, nil)
	})
}

func mustRevision(t *testing.T, n *kvstore.Node) int64 {
	t.Helper()
	rev, _ := state(t, n)
	return rev
}

// WithCompactPhysical returns once the history is freed on the node that
// compacted; the compaction itself is the same.
func TestCompactPhysical(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		f := c.Followers()[0]
		for i := range 3000 {
			if _, err := f.Put(ctx, []byte(fmt.Sprint("k", i%10)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		before := f.Status().StoreSize
		if _, err := f.Compact(ctx, 2900, kvstore.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		if after := f.Status().StoreSize; after >= before/2 {
			t.Fatalf("store size %d after a physical compaction, %d before", after, before)
		}
		if _, err := f.Get(ctx, []byte("k1"), kvstore.WithRev(100)); !errors.Is(err, kvstore.ErrCompacted) {
			t.Fatalf("read below the compact revision: %v", err)
		}
	})
}
