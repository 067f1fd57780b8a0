package transport_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// checkHeartbeatBehindTimeoutNow checks that a heartbeat sent to b while b's raft is handling a
// TimeoutNow goes through b's Consumer, behind the TimeoutNow, and not to b's heartbeat
// handler beside it (heartbeatGate: raft's main loop must see the heartbeat after it marked
// its candidacy as a leadership transfer's), and that the next heartbeat takes the fast path
// again. from is the sender's address, as raft's header names it.
func checkHeartbeatBehindTimeoutNow(t *testing.T, a, b transport.Transport, bAddr raft.ServerAddress, from string) {
	t.Helper()
	var beats atomic.Int64
	b.SetHeartbeatHandler(func(rpc raft.RPC) {
		beats.Add(1)
		rpc.Respond(favourable(rpc))
	})
	hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte(from)}, Term: 2}
	heartbeat := func() <-chan error {
		done := make(chan error, 1)
		go func() {
			var resp raft.AppendEntriesResponse
			done <- a.AppendEntries("b", bAddr, hb, &resp)
		}()
		return done
	}

	timeoutNow := make(chan error, 1)
	go func() {
		timeoutNow <- a.TimeoutNow("b", bAddr, &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{Addr: []byte(from)}}, &raft.TimeoutNowResponse{})
	}()
	deadline := time.After(10 * time.Second)
	var held raft.RPC
	select {
	case held = <-b.Consumer():
	case <-deadline:
		t.Fatal("TimeoutNow never reached the consumer")
	}
	if _, ok := held.Command.(*raft.TimeoutNowRequest); !ok {
		t.Fatalf("consumer got %T, want the TimeoutNow", held.Command)
	}

	beat := heartbeat()
	select {
	case rpc := <-b.Consumer():
		if _, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok {
			t.Fatalf("consumer got %T, want the heartbeat", rpc.Command)
		}
		held.Respond(favourable(held))
		rpc.Respond(favourable(rpc))
	case err := <-beat:
		t.Fatalf("heartbeat answered by the fast path (%d beats, err %v) while the TimeoutNow was being handled", beats.Load(), err)
	case <-deadline:
		t.Fatal("heartbeat never reached the consumer")
	}
	if err := <-timeoutNow; err != nil {
		t.Fatalf("TimeoutNow: %v", err)
	}
	if err := <-beat; err != nil {
		t.Fatalf("heartbeat behind the TimeoutNow: %v", err)
	}
	if err := <-heartbeat(); err != nil || beats.Load() != 1 {
		t.Fatalf("heartbeat after the TimeoutNow: err %v, fast path ran %d times, want once", err, beats.Load())
	}
}

func TestHeartbeatBehindTimeoutNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		checkHeartbeatBehindTimeoutNow(t, a, b, "b", "a")
	})
}

func TestTCPHeartbeatBehindTimeoutNow(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	checkHeartbeatBehindTimeoutNow(t, a, b, b.LocalAddr(), string(a.LocalAddr()))
}
