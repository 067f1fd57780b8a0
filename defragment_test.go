package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// Defragment on one member of three changes nothing any client sees: a
// watch opened before it goes on delivering, reads at older revisions and
// writes through the member work, and the members' HashKV agree.
func TestDefragmentMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		c.WaitLeader()
		n := c.Followers()[0]
		ctx := context.Background()
		for i := range 500 {
			if _, err := n.Put(ctx, fmt.Appendf(nil, "key/%04d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		before, err := n.Get(ctx, []byte("key/"), kvstore.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wch, err := n.Watch(wctx, []byte("key/"), kvstore.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}

		if err := n.Defragment(ctx); err != nil {
			t.Fatal(err)
		}

		put, err := n.Put(ctx, []byte("key/0007"), []byte("after"))
		if err != nil {
			t.Fatal(err)
		}
		resp := <-wch
		if len(resp.Events) != 1 || string(resp.Events[0].KV.Key) != "key/0007" || resp.Events[0].KV.ModRevision != put.Header.Revision {
			t.Fatalf("watch after Defragment: %+v, want the put of key/0007 at %d", resp, put.Header.Revision)
		}
		old, err := n.Get(ctx, []byte("key/"), kvstore.WithPrefix(), kvstore.WithRev(before.Header.Revision))
		if err != nil {
			t.Fatal(err)
		}
		if len(old.KVs) != len(before.KVs) || string(old.KVs[7].Value) != "v7" {
			t.Fatalf("read at %d after Defragment: %d keys, key/0007 = %q; want %d keys, v7", before.Header.Revision, len(old.KVs), old.KVs[7].Value, len(before.KVs))
		}
		c.WaitApplied()
		var hashes []uint32
		for _, m := range c.Nodes() {
			res, err := m.HashKV(put.Header.Revision)
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, res.Hash)
		}
		if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
			t.Fatalf("HashKV(%d) after one member's Defragment: %v", put.Header.Revision, hashes)
		}

		c.Stop(c.Index(n))
		if err := n.Defragment(ctx); !errors.Is(err, kvstore.ErrClosed) {
			t.Fatalf("Defragment on a closed node: %v, want ErrClosed", err)
		}
	})
}
