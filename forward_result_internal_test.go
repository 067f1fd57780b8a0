package kvstore

import (
	"context"
	"runtime"
	"testing"
	"weak"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/transport"
)

// TestWriteResultNotKeptByLog checks that a write's result (here its
// events) is garbage once the proposer has dropped it: raft's log stores
// hold the leader's entries by pointers into their futures, which used to
// keep every retained entry's whole result reachable.
func TestWriteResultNotKeptByLog(t *testing.T) {
	ctx := context.Background()
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open("", WithID("n1"), WithTransport(tr), WithMemoryStorage(NewMemoryStorage()),
		WithBootstrap(Peer{ID: "n1", Address: "n1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := wire.EncodeCommand(&wire.Command{Kind: wire.CmdPut, Put: &wire.Put{Key: []byte("k"), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	events := func() weak.Pointer[KeyValue] {
		res, _, err := n.proposeLocal(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) != 1 {
			t.Fatalf("%d events, want 1", len(res.Events))
		}
		return weak.Make(&res.Events[0].KV)
	}()
	runtime.GC()
	if events.Value() != nil {
		t.Fatal("the write's events are still reachable after the proposer dropped them")
	}
}
