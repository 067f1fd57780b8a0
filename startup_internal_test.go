package kvstore

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/transport"
)

// TestCallDuringStartupIsRefusedRetryably restarts a node whose newest
// snapshot raft restores inside Open, and calls it from another member at
// that moment, as a follower still forwarding to its old leader does. The
// call must get "not the leader" (nothing done, retry), not crash the
// process: the handler used to reach raft before Open had created it.
func TestCallDuringStartupIsRefusedRetryably(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		network := transport.NewNetwork()
		probe, err := network.Join("probe")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { probe.Close() })
		storage := NewMemoryStorage()
		open := func(hooks TestHooks) *Node {
			t.Helper()
			tr, err := network.Join("n1")
			if err != nil {
				t.Fatal(err)
			}
			n, err := Open("", WithID("n1"), WithTransport(tr), WithMemoryStorage(storage),
				WithBootstrap(Peer{ID: "n1", Address: "n1"}), WithTestHooks(hooks))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		n := open(TestHooks{})
		if _, err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := n.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}

		cmd, err := wire.EncodeCommand(&wire.Command{Kind: wire.CmdPut, Put: &wire.Put{Key: []byte("k"), Value: []byte("w")}})
		if err != nil {
			t.Fatal(err)
		}
		request, err := wire.EncodeRPC(&wire.Request{Kind: wire.RPCPropose, Cluster: DefaultClusterToken, Command: cmd})
		if err != nil {
			t.Fatal(err)
		}
		var (
			called   bool
			replyErr error
		)
		n = open(TestHooks{BeforeRestore: func() {
			if called {
				return
			}
			called = true
			data, err := probe.Call(ctx, "n1", "n1", request)
			if err != nil {
				replyErr = err
				return
			}
			var reply wire.Reply
			if err := wire.DecodeRPC(data, &reply); err != nil {
				replyErr = err
				return
			}
			replyErr = fromWireError(reply.Err)
		}})
		defer n.Close()
		if !called {
			t.Fatal("Open restored no snapshot: the test no longer reaches the startup window")
		}
		if !errors.Is(replyErr, ErrNotLeader) {
			t.Fatalf("call during startup answered %v, want ErrNotLeader", replyErr)
		}
		// Once open, the node serves as before, and the refused call did
		// nothing.
		if _, err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		resp, err := n.Get(ctx, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.KVs) != 1 || string(resp.KVs[0].Value) != "v" {
			t.Fatalf("after restart: %+v, want k=v", resp.KVs)
		}
	})
}
