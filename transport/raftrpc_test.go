package transport_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// respondAll serves tr's Consumer until the test ends, answering every RPC favourably; an
// InstallSnapshot's stream is read to the end first. It returns the number of RPCs served.
func respondAll(t *testing.T, tr *transport.MemTransport) *atomic.Int64 {
	var served atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case rpc := <-tr.Consumer():
				served.Add(1)
				rpc.Respond(favourable(rpc))
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return &served
}

// favourable returns a successful response to rpc.
func favourable(rpc raft.RPC) (any, error) {
	switch cmd := rpc.Command.(type) {
	case *raft.AppendEntriesRequest:
		return &raft.AppendEntriesResponse{Term: cmd.Term, LastLog: cmd.PrevLogEntry + uint64(len(cmd.Entries)), Success: true}, nil
	case *raft.RequestVoteRequest:
		return &raft.RequestVoteResponse{Term: cmd.Term, Granted: true}, nil
	case *raft.RequestPreVoteRequest:
		return &raft.RequestPreVoteResponse{Term: cmd.Term, Granted: true}, nil
	case *raft.TimeoutNowRequest:
		return &raft.TimeoutNowResponse{}, nil
	case *raft.InstallSnapshotRequest:
		n, err := io.Copy(io.Discard, rpc.Reader)
		if err != nil {
			return nil, err
		}
		return &raft.InstallSnapshotResponse{Term: cmd.Term, Success: n == cmd.Size}, nil
	}
	return nil, errors.New("unexpected command")
}

func TestRaftRPCsDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		served := respondAll(t, b)

		var ae raft.AppendEntriesResponse
		req := &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 7, Entries: []*raft.Log{{Index: 8, Data: []byte("x")}}}
		if err := a.AppendEntries("b", "b", req, &ae); err != nil || !ae.Success || ae.Term != 3 || ae.LastLog != 8 {
			t.Fatalf("AppendEntries: %+v, %v", ae, err)
		}
		var rv raft.RequestVoteResponse
		if err := a.RequestVote("b", "b", &raft.RequestVoteRequest{Term: 4}, &rv); err != nil || !rv.Granted || rv.Term != 4 {
			t.Fatalf("RequestVote: %+v, %v", rv, err)
		}
		var pv raft.RequestPreVoteResponse
		if err := a.RequestPreVote("b", "b", &raft.RequestPreVoteRequest{Term: 5}, &pv); err != nil || !pv.Granted || pv.Term != 5 {
			t.Fatalf("RequestPreVote: %+v, %v", pv, err)
		}
		var tn raft.TimeoutNowResponse
		if err := a.TimeoutNow("b", "b", &raft.TimeoutNowRequest{}, &tn); err != nil {
			t.Fatalf("TimeoutNow: %v", err)
		}
		if served.Load() != 4 {
			t.Fatalf("served %d RPCs, want 4", served.Load())
		}
		if _, err := a.AppendEntriesPipeline("b", "b"); err != raft.ErrPipelineReplicationNotSupported {
			t.Fatalf("AppendEntriesPipeline err = %v, want raft.ErrPipelineReplicationNotSupported", err)
		}
		if got := a.DecodePeer(a.EncodePeer("b", "b")); got != "b" {
			t.Fatalf("DecodePeer(EncodePeer(b)) = %q", got)
		}
	})
}

func TestRaftRPCErrorResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		boom := errors.New("boom")
		go func() {
			rpc := <-b.Consumer()
			rpc.Respond(&raft.RequestVoteResponse{}, boom)
		}()
		var resp raft.RequestVoteResponse
		if err := a.RequestVote("b", "b", &raft.RequestVoteRequest{}, &resp); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the receiver's error", err)
		}
	})
}

func TestRaftRPCUnknownTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a := join(t, n, "a")
		var resp raft.AppendEntriesResponse
		err := a.AppendEntries("x", "x", &raft.AppendEntriesRequest{}, &resp)
		if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "x") {
			t.Fatalf("err = %v, want ErrUnreachable naming x", err)
		}
	})
}

// An RPC to a node whose raft does not consume, or never answers, fails after the RPC timeout.
func TestRaftRPCTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a := join(t, n, "a", transport.WithRPCTimeout(300*time.Millisecond))
		b := join(t, n, "b")
		var resp raft.AppendEntriesResponse

		start := time.Now()
		err := a.AppendEntries("b", "b", &raft.AppendEntriesRequest{}, &resp)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("not consumed: err = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Fatalf("not consumed: failed after %v, want 300ms", d)
		}

		taken := make(chan raft.RPC, 1)
		go func() { taken <- <-b.Consumer() }()
		start = time.Now()
		err = a.AppendEntries("b", "b", &raft.AppendEntriesRequest{}, &resp)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("not answered: err = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Fatalf("not answered: failed after %v, want 300ms", d)
		}
		late := <-taken
		late.Respond(&raft.AppendEntriesResponse{}, nil) // a late answer is harmless
	})
}

// A pending RPC fails as soon as its target closes, without waiting for the timeout.
func TestRaftRPCTargetCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		go func() {
			<-b.Consumer() // take it, never answer
			_ = b.Close()
		}()
		start := time.Now()
		var resp raft.AppendEntriesResponse
		err := a.AppendEntries("b", "b", &raft.AppendEntriesRequest{}, &resp)
		if !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("failed after %v, want at once", d)
		}
	})
}

func TestHeartbeatFastPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		served := respondAll(t, b)
		var beats atomic.Int64
		b.SetHeartbeatHandler(func(rpc raft.RPC) {
			beats.Add(1)
			rpc.Respond(favourable(rpc))
		})

		var resp raft.AppendEntriesResponse
		hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte("a")}, Term: 2}
		if err := a.AppendEntries("b", "b", hb, &resp); err != nil || !resp.Success {
			t.Fatalf("heartbeat: %+v, %v", resp, err)
		}
		full := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte("a")}, Term: 2, PrevLogEntry: 1, PrevLogTerm: 1}
		if err := a.AppendEntries("b", "b", full, &resp); err != nil || !resp.Success {
			t.Fatalf("append: %+v, %v", resp, err)
		}
		if beats.Load() != 1 || served.Load() != 1 {
			t.Fatalf("heartbeat handler ran %d times, consumer %d; want 1 and 1", beats.Load(), served.Load())
		}
	})
}

func TestInstallSnapshotStreamsData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		data := bytes.Repeat([]byte("snapshot-"), 100_000) // larger than any pipe buffer
		received := make(chan []byte, 1)
		go func() {
			rpc := <-b.Consumer()
			req := rpc.Command.(*raft.InstallSnapshotRequest)
			got, err := io.ReadAll(rpc.Reader)
			received <- got
			rpc.Respond(&raft.InstallSnapshotResponse{Term: req.Term, Success: err == nil}, err)
		}()

		var resp raft.InstallSnapshotResponse
		req := &raft.InstallSnapshotRequest{Term: 9, Size: int64(len(data))}
		if err := a.InstallSnapshot("b", "b", req, &resp, bytes.NewReader(data)); err != nil || !resp.Success || resp.Term != 9 {
			t.Fatalf("InstallSnapshot: %+v, %v", resp, err)
		}
		if got := <-received; !bytes.Equal(got, data) {
			t.Fatalf("receiver read %d bytes, want the %d sent", len(got), len(data))
		}
	})
}

// When the sender gives up, the receiver's stream fails instead of hanging or reading the
// sender's reader after InstallSnapshot returned.
func TestInstallSnapshotAbandonedStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a := join(t, n, "a", transport.WithRPCTimeout(100*time.Millisecond))
		b := join(t, n, "b")
		taken := make(chan raft.RPC, 1)
		go func() { taken <- <-b.Consumer() }()

		start := time.Now()
		var resp raft.InstallSnapshotResponse
		err := a.InstallSnapshot("b", "b", &raft.InstallSnapshotRequest{Size: 1 << 20}, &resp, bytes.NewReader(make([]byte, 1<<20)))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("failed after %v, want 10×100ms", d)
		}
		rpc := <-taken
		if _, err := io.ReadAll(rpc.Reader); err == nil {
			t.Fatal("receiver read the whole stream after the sender gave up")
		}
		rpc.Respond(&raft.InstallSnapshotResponse{}, nil)
	})
}
