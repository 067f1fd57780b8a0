package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// errSnapshotAborted is what the receiver of an InstallSnapshot stream reads once the sender
// has given up on the RPC.
var errSnapshotAborted = errors.New("transport: snapshot stream aborted by sender")

// Consumer returns the channel on which RPCs sent to t arrive. Each RPC must be answered
// through its RespChan (raft.RPC.Respond); the sender waits for the answer until its RPC timeout.
func (t *MemTransport) Consumer() <-chan raft.RPC { return t.consumer }

// SetHeartbeatHandler installs a fast path for heartbeats: AppendEntries requests that carry no
// entries and no log position are handed to cb, on the sender's goroutine, instead of to the
// Consumer channel, so a receiver busy with other RPCs still sees its leader. nil removes it.
func (t *MemTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		t.heartbeat.Store(nil)
		return
	}
	t.heartbeat.Store(&cb)
}

// AppendEntriesPipeline is not supported; raft falls back to synchronous AppendEntries.
func (t *MemTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// AppendEntries sends an AppendEntries RPC to target and waits for its response.
func (t *MemTransport) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return roundTrip(t, "AppendEntries", target, args, nil, t.cfg.rpcTimeout, resp)
}

// RequestVote sends a RequestVote RPC to target and waits for its response.
func (t *MemTransport) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return roundTrip(t, "RequestVote", target, args, nil, t.cfg.rpcTimeout, resp)
}

// RequestPreVote sends a RequestPreVote RPC to target and waits for its response.
func (t *MemTransport) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return roundTrip(t, "RequestPreVote", target, args, nil, t.cfg.rpcTimeout, resp)
}

// TimeoutNow sends a TimeoutNow RPC to target and waits for its response.
func (t *MemTransport) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return roundTrip(t, "TimeoutNow", target, args, nil, t.cfg.rpcTimeout, resp)
}

// InstallSnapshot sends an InstallSnapshot RPC to target, streaming data to it as the RPC's
// Reader, and waits for its response. It is bounded by ten times the RPC timeout. data is not
// read after InstallSnapshot returns; a receiver still reading then gets an error.
func (t *MemTransport) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	pr, pw := io.Pipe()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, err := io.Copy(pw, data)
		pw.CloseWithError(err) // nil: the receiver reads EOF
	}()
	defer func() {
		pr.CloseWithError(errSnapshotAborted) // unblocks the copier if the receiver stopped reading
		<-copied
	}()
	return roundTrip(t, "InstallSnapshot", target, args, pr, snapshotTimeoutFactor*t.cfg.rpcTimeout, resp)
}

// EncodePeer returns the address as bytes; the ID is not needed to reach a MemTransport.
func (t *MemTransport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

// DecodePeer is the inverse of EncodePeer.
func (t *MemTransport) DecodePeer(buf []byte) raft.ServerAddress {
	return raft.ServerAddress(buf)
}

// roundTrip delivers one raft RPC from t to target and copies the response into resp. It fails
// with an error wrapping ErrUnreachable (target unknown, closed, cut off, or reply lost),
// ErrClosed (t closed meanwhile), context.DeadlineExceeded (timeout), or the error the target
// responded with.
func roundTrip[Resp any](t *MemTransport, name string, target raft.ServerAddress, args any, data io.Reader, timeout time.Duration, resp *Resp) error {
	if t.ctx.Err() != nil {
		return fmt.Errorf("%w: %s to %s", ErrClosed, name, target)
	}
	peer, err := t.net.route(t.addr, target)
	if err != nil {
		return err
	}
	respCh := make(chan raft.RPCResponse, 1) // never blocks the responder
	rpc := raft.RPC{Command: args, Reader: data, RespChan: respCh}
	if _, ok := args.(*raft.TimeoutNowRequest); ok {
		peer.gate.closeFast()
		defer peer.gate.openFast()
	}
	// The timeout is a timer of the call's own, not a context derived from
	// t's: a derived context registers with its parent and allocates on
	// every call, and heartbeats, answered on this goroutine, need neither.
	var timer *time.Timer
	if hb := peer.heartbeat.Load(); hb != nil && isHeartbeat(args) && peer.gate.enterFast() {
		// The handler runs on this goroutine but touches the peer's raft
		// and storage: the peer's Close waits for it, so the peer's node
		// cannot close its storage under a heartbeat in flight.
		if !peer.enter() {
			peer.gate.leaveFast()
			return unreachable(target, "closed")
		}
		(*hb)(rpc)
		peer.wg.Done()
		peer.gate.leaveFast()
	} else {
		timer = time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case peer.consumer <- rpc:
		case <-peer.ctx.Done():
			return unreachable(target, "closed")
		case <-t.ctx.Done():
			return errInterrupted(name, target)
		case <-timer.C:
			return errTimedOut(name, target)
		}
	}

	if timer == nil && len(respCh) == 0 {
		// The heartbeat handler returned without answering (its raft is
		// shutting down): wait for the answer as for any other call.
		timer = time.NewTimer(timeout)
		defer timer.Stop()
	}
	var expired <-chan time.Time // nil (never) when the handler answered
	if timer != nil {
		expired = timer.C
	}
	select {
	case r := <-respCh:
		if t.net.Blocked(target, t.addr) {
			return unreachable(target, "reply lost")
		}
		if r.Error != nil {
			return fmt.Errorf("transport: %s to %s: %w", name, target, r.Error)
		}
		out, ok := r.Response.(*Resp)
		if !ok || out == nil {
			return fmt.Errorf("transport: %s to %s: unexpected response %T", name, target, r.Response)
		}
		*resp = *out
		return nil
	case <-peer.ctx.Done():
		return unreachable(target, "closed")
	case <-t.ctx.Done():
		return errInterrupted(name, target)
	case <-expired:
		return errTimedOut(name, target)
	}
}

// errInterrupted is a round trip's error when its own transport closed
// while it waited.
func errInterrupted(name string, target raft.ServerAddress) error {
	return fmt.Errorf("%w: %s to %s interrupted", ErrClosed, name, target)
}

// errTimedOut is a round trip's error when its timeout passed first.
func errTimedOut(name string, target raft.ServerAddress) error {
	return fmt.Errorf("transport: %s to %s: %w", name, target, context.DeadlineExceeded)
}

// isHeartbeat reports whether cmd is an AppendEntries request that only asserts leadership, the
// test raft's NetworkTransport uses for its heartbeat fast path; both transports use it, so
// that they treat a request alike. A heartbeat the commit relay wrote a commit index into is
// not one.
func isHeartbeat(cmd any) bool {
	req, ok := cmd.(*raft.AppendEntriesRequest)
	return ok && req.Term != 0 && len(req.RPCHeader.Addr) != 0 &&
		req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
		len(req.Entries) == 0 && req.LeaderCommitIndex == 0
}
