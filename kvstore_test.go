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
	"github.com/kvstore/kvstore/transport"
)

// startCluster starts n in-memory nodes with kvtest and returns them.
func startCluster(t *testing.T, n int) []*kvstore.Node {
	t.Helper()
	return kvtest.NewCluster(t, n).Nodes()
}

func leaderOf(t *testing.T, nodes []*kvstore.Node) *kvstore.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		for _, n := range nodes {
			if n.IsLeader() {
				return n
			}
		}
		if _, err := nodes[0].WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestSingleNodePutGetDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nodes := startCluster(t, 1)
		n := leaderOf(t, nodes)
		ctx := context.Background()
		put, err := n.Put(ctx, []byte("a"), []byte("1"))
		if err != nil || put.Header.Revision != 2 || put.Header.MemberID != "n1" || put.Header.RaftTerm == 0 {
			t.Fatalf("put: %+v %v", put, err)
		}
		n.Put(ctx, []byte("a/x"), []byte("2"))
		put, err = n.Put(ctx, []byte("a"), []byte("3"), kvstore.WithPrevKV())
		if err != nil || put.PrevKV == nil || string(put.PrevKV.Value) != "1" {
			t.Fatalf("put prev kv: %+v %v", put, err)
		}
		get, err := n.Get(ctx, []byte("a"), kvstore.WithPrefix())
		if err != nil || get.Count != 2 || string(get.KVs[0].Value) != "3" || get.Header.Revision != 4 {
			t.Fatalf("get: %+v %v", get, err)
		}
		old, err := n.Get(ctx, []byte("a"), kvstore.WithRev(2), kvstore.WithSerializable())
		if err != nil || string(old.KVs[0].Value) != "1" {
			t.Fatalf("get at revision 2: %+v %v", old, err)
		}
		del, err := n.Delete(ctx, []byte("a"), kvstore.WithFromKey(), kvstore.WithPrevKV())
		if err != nil || del.Deleted != 2 || len(del.PrevKVs) != 2 {
			t.Fatalf("delete: %+v %v", del, err)
		}
		if _, err := n.Put(ctx, nil, []byte("x")); !errors.Is(err, kvstore.ErrEmptyKey) {
			t.Fatalf("empty key: %v", err)
		}
		if _, err := n.Put(ctx, []byte("k"), []byte("v"), kvstore.WithLease(9)); !errors.Is(err, kvstore.ErrLeaseNotFound) {
			t.Fatalf("unknown lease: %v", err)
		}
		if _, err := n.Get(ctx, []byte("a"), kvstore.WithRev(99)); !errors.Is(err, kvstore.ErrFutureRevision) {
			t.Fatalf("future revision: %v", err)
		}
		big := make([]byte, kvstore.DefaultMaxRequestBytes)
		if _, err := n.Put(ctx, []byte("big"), big); !errors.Is(err, kvstore.ErrRequestTooLarge) {
			t.Fatalf("too large: %v", err)
		}
		n.Close()
		if _, err := n.Put(ctx, []byte("a"), nil); !errors.Is(err, kvstore.ErrClosed) {
			t.Fatalf("put after close: %v", err)
		}
	})
}

// TestRestartFromDataDir writes through a one-node cluster on disk, closes it
// and reopens the same data dir without bootstrap settings: the node rejoins
// as it was, with its data. It runs in real time (file I/O does not block
// durably in a synctest bubble), with short raft timeouts and deadlines.
func TestRestartFromDataDir(t *testing.T) {
	for _, kind := range []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dir := t.TempDir()
			network := transport.NewNetwork()
			open := func(opts ...kvstore.Option) *kvstore.Node {
				tr, err := network.Join("n1")
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithLogStore(kind),
					kvstore.WithRaftTiming(20*time.Millisecond, 40*time.Millisecond, 20*time.Millisecond, 5*time.Millisecond))
				n, err := kvstore.Open(dir, opts...)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			n := open(kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}))
			waitLeading(t, ctx, n)
			for i := range 5 {
				if _, err := n.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			n = open()
			defer n.Close()
			waitLeading(t, ctx, n)
			get, err := n.Get(ctx, []byte("k"), kvstore.WithPrefix())
			if err != nil || get.Count != 5 || get.Header.Revision != 6 {
				t.Fatalf("after restart: %+v %v", get, err)
			}
		})
	}
}

// waitLeading polls, until ctx ends, for n to become leader.
func waitLeading(t *testing.T, ctx context.Context, n *kvstore.Node) {
	t.Helper()
	for !n.IsLeader() {
		select {
		case <-ctx.Done():
			t.Fatal("node did not become leader")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
