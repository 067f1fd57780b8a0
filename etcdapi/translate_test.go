package etcdapi_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/kvstore/kvstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestRangeMatchesNode reads with random Range options twice, through
// clientv3 over gRPC and through the node's own Get with the same options,
// and compares the answers field by field: the API adds and drops nothing.
func TestRangeMatchesNode(t *testing.T) {
	c := newCluster(t, 1)
	ctx := testContext(t)
	cli := c.client(t)
	node := c.Node(0)
	rng := rand.New(rand.NewPCG(17, 1))
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(20)) }
	for range 200 {
		if rng.IntN(4) == 0 {
			if _, err := cli.Delete(ctx, key()); err != nil {
				t.Fatal(err)
			}
		} else if _, err := cli.Put(ctx, key(), fmt.Sprint(rng.IntN(100))); err != nil {
			t.Fatal(err)
		}
	}
	head, err := node.Get(ctx, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	rev := head.Header.Revision

	for i := range 300 {
		var copts []clientv3.OpOption
		var kopts []kvstore.OpOption
		k := key()
		switch rng.IntN(4) {
		case 0:
			copts, kopts = append(copts, clientv3.WithPrefix()), append(kopts, kvstore.WithPrefix())
			k = "k1"
		case 1:
			end := key()
			copts, kopts = append(copts, clientv3.WithRange(end)), append(kopts, kvstore.WithRange([]byte(end)))
		case 2:
			copts, kopts = append(copts, clientv3.WithFromKey()), append(kopts, kvstore.WithFromKey())
		}
		if rng.IntN(2) == 0 {
			r := 1 + rng.Int64N(rev)
			copts, kopts = append(copts, clientv3.WithRev(r)), append(kopts, kvstore.WithRev(r))
		}
		if rng.IntN(2) == 0 {
			n := rng.Int64N(5)
			copts, kopts = append(copts, clientv3.WithLimit(n)), append(kopts, kvstore.WithLimit(n))
		}
		if rng.IntN(2) == 0 {
			target, order := rng.IntN(5), rng.IntN(3)
			copts = append(copts, clientv3.WithSort(clientv3.SortTarget(target), clientv3.SortOrder(order)))
			kopts = append(kopts, kvstore.WithSort(kvstore.SortTarget(target), kvstore.SortOrder(order)))
		}
		switch rng.IntN(4) {
		case 0:
			copts, kopts = append(copts, clientv3.WithKeysOnly()), append(kopts, kvstore.WithKeysOnly())
		case 1:
			copts, kopts = append(copts, clientv3.WithCountOnly()), append(kopts, kvstore.WithCountOnly())
		}
		if rng.IntN(3) == 0 {
			lo, hi := rng.Int64N(rev), rng.Int64N(rev)
			copts = append(copts, clientv3.WithMinModRev(lo), clientv3.WithMaxModRev(hi))
			kopts = append(kopts, kvstore.WithModRevisionRange(lo, hi))
		}
		if rng.IntN(3) == 0 {
			lo, hi := rng.Int64N(rev), rng.Int64N(rev)
			copts = append(copts, clientv3.WithMinCreateRev(lo), clientv3.WithMaxCreateRev(hi))
			kopts = append(kopts, kvstore.WithCreateRevisionRange(lo, hi))
		}

		got, gerr := cli.Get(ctx, k, copts...)
		want, werr := node.Get(ctx, []byte(k), kopts...)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("read %d on %q: over gRPC %v, from the node %v", i, k, gerr, werr)
		}
		if gerr != nil {
			continue
		}
		var wantKVs []string
		for _, kv := range want.KVs {
			wantKVs = append(wantKVs, fmt.Sprint(string(kv.Key), string(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease))
		}
		var gotKVs []string
		for _, kv := range got.Kvs {
			gotKVs = append(gotKVs, fmt.Sprint(string(kv.Key), string(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease))
		}
		if !reflect.DeepEqual(gotKVs, wantKVs) || got.Count != want.Count || got.More != want.More || got.Header.Revision != want.Header.Revision {
			t.Fatalf("read %d on %q: over gRPC %v count=%d more=%v rev=%d; from the node %v count=%d more=%v rev=%d",
				i, k, gotKVs, got.Count, got.More, got.Header.Revision, wantKVs, want.Count, want.More, want.Header.Revision)
		}
	}
}
