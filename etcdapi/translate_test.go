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

// TestWatchMatchesNode watches the same range with prev-kv through
// clientv3 and through the node's own Watch, under random puts, deletes
// and txns, and compares the two event streams in full.
func TestWatchMatchesNode(t *testing.T) {
	c := newCluster(t, 1)
	ctx := testContext(t)
	cli := c.client(t)
	node := c.Node(0)
	remote := cli.Watch(ctx, "k", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(1))
	local, err := node.Watch(ctx, []byte("k"), kvstore.WithPrefix(), kvstore.WithPrevKV(), kvstore.WithRev(1))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(17, 2))
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(10)) }
	for range 100 {
		var err error
		switch rng.IntN(4) {
		case 0:
			_, err = cli.Delete(ctx, key(), clientv3.WithRange(key()))
		case 1:
			_, err = cli.Txn(ctx).Then(clientv3.OpPut(key()+"a", "t"), clientv3.OpDelete(key()+"b")).Commit()
		default:
			_, err = cli.Put(ctx, key(), fmt.Sprint(rng.IntN(100)))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	last, err := cli.Put(ctx, "k-last", "")
	if err != nil {
		t.Fatal(err)
	}
	render := func(typ string, kv, prev []any) string { return fmt.Sprint(typ, kv, prev) }
	var want []string
	for len(want) == 0 || want[len(want)-1] != render("PUT", []any{"k-last", "", last.Header.Revision, last.Header.Revision, int64(1), int64(0)}, nil) {
		var resp kvstore.WatchResponse
		select {
		case resp = <-local:
		case <-ctx.Done():
			t.Fatal("the node's watch stalled")
		}
		for _, ev := range resp.Events {
			var prev []any
			if ev.PrevKV != nil {
				prev = []any{string(ev.PrevKV.Key), string(ev.PrevKV.Value), ev.PrevKV.CreateRevision, ev.PrevKV.ModRevision, ev.PrevKV.Version, ev.PrevKV.Lease}
			}
			want = append(want, render(ev.Type.String(), []any{string(ev.KV.Key), string(ev.KV.Value), ev.KV.CreateRevision, ev.KV.ModRevision, ev.KV.Version, ev.KV.Lease}, prev))
		}
	}
	var got []string
	for len(got) < len(want) {
		resp := next(t, remote)
		for _, ev := range resp.Events {
			var prev []any
			if ev.PrevKv != nil {
				prev = []any{string(ev.PrevKv.Key), string(ev.PrevKv.Value), ev.PrevKv.CreateRevision, ev.PrevKv.ModRevision, ev.PrevKv.Version, ev.PrevKv.Lease}
			}
			got = append(got, render(ev.Type.String(), []any{string(ev.Kv.Key), string(ev.Kv.Value), ev.Kv.CreateRevision, ev.Kv.ModRevision, ev.Kv.Version, ev.Kv.Lease}, prev))
		}
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("event %d of %d: over gRPC %s, from the node %s", i, len(want), got[i], want[i])
			}
		}
		t.Fatalf("over gRPC %d events, from the node %d", len(got), len(want))
	}
}
