package kvstore_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// TestCloseSnapshotsLongLog loads a node, closes it and reopens it on the
// same storage: after a long log (more command bytes since the last
// snapshot than closesnapshot.go's floor and than half the store) the
// reopened node restores a snapshot Close took and replays no entry; after
// a short one Close takes none and Open replays the log, also when the
// long part was covered by a snapshot taken before. Either way every key is
// back.
func TestCloseSnapshotsLongLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		txns int
		// snapshotAt is the txn after which the test takes a snapshot
		// (Node.Snapshot), 0 for none.
		snapshotAt int
		// restore is whether the reopened node restores a snapshot,
		// replay how many txns it replays.
		restore bool
		replay  int
	}{
		{"short log: replayed", 8, 0, false, 8},
		{"long log: snapshot at close", 96, 0, true, 0},
		{"long log snapshotted, short log after: replayed", 96, 88, true, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				network := transport.NewNetwork()
				storage := kvstore.NewMemoryStorage()
				var applied, restored atomic.Int64
				open := func(t *testing.T) *kvstore.Node {
					t.Helper()
					tr, err := network.Join("n1")
					if err != nil {
						t.Fatal(err)
					}
					n, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr),
						kvstore.WithMemoryStorage(storage), kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}),
						kvstore.WithTestHooks(kvstore.TestHooks{
							BeforeApply:   func(uint64) { applied.Add(1) },
							BeforeRestore: func() { restored.Add(1) },
						}))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := n.WaitLeader(ctx); err != nil {
						t.Fatal(err)
					}
					return n
				}
				n := open(t)
				value := bytes.Repeat([]byte("v"), 2000)
				const perTxn = 100
				for i := range tc.txns {
					ops := make([]kvstore.Op, perTxn)
					for j := range ops {
						ops[j] = kvstore.OpPut(fmt.Appendf(nil, "k/%06d", i*perTxn+j), value)
					}
					if _, err := n.Txn(ctx).Then(ops...).Commit(); err != nil {
						t.Fatal(err)
					}
					if i+1 == tc.snapshotAt {
						if err := n.Snapshot(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := n.Close(); err != nil {
					t.Fatal(err)
				}

				applied.Store(0)
				n = open(t)
				defer n.Close()
				resp, err := n.Get(ctx, []byte("k/"), kvstore.WithPrefix(), kvstore.WithCountOnly())
				if err != nil {
					t.Fatal(err)
				}
				if want := int64(tc.txns * perTxn); resp.Count != want {
					t.Fatalf("after reopen: %d keys, want %d", resp.Count, want)
				}
				if got := restored.Load() == 1; got != tc.restore {
					t.Errorf("reopen restored a snapshot: %v, want %v", got, tc.restore)
				}
				// Besides the replayed txns raft may hand the FSM the
				// bootstrap's configuration entry and the new leader's.
				if got := applied.Load(); got < int64(tc.replay) || got > int64(tc.replay)+2 {
					t.Errorf("reopen applied %d entries, want the %d txns replayed and at most 2 more", got, tc.replay)
				}
			})
		})
	}
}
