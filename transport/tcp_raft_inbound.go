package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// The receiving side of raft's RPCs over TCP: each accepted raft connection is read by the
// goroutine that accepted it, which decodes each request in NetworkTransport's wire format,
// checks who speaks, hands it straight to the transport's Consumer (or the heartbeat handler)
// and writes raft's answer back (see the overview in tcp_raft.go).
//
// The wire format is the one hashicorp/raft's NetworkTransport speaks, since the sending side
// is a NetworkTransport: a request is one byte naming its type (rpcAppendEntries...) and the
// request struct in msgpack; InstallSnapshot's is followed by the snapshot's Size bytes. An
// answer is the error's text in msgpack ("" for none), then the response struct. Answers go
// in the order the requests came, one request at a time per connection: the sender waits for
// each answer before it sends again on that connection.

// The request types of NetworkTransport's wire format (hashicorp/raft's net_transport.go).
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// raftReceiveBuffer is the read buffer of an inbound raft connection: an AppendEntries batch
// of 64 puts is about 20 KiB, and one read should take it whole. It is NetworkTransport's size.
const raftReceiveBuffer = 256 << 10

// inboundRaft is one accepted raft connection, read by serveRaft's goroutine alone.
type inboundRaft struct {
	t    *TCPTransport
	conn *trackedConn
	peer raft.ServerID // the ID the connection is authenticated as; "" if not checked
	r    *bufio.Reader
	dec  *codec.Decoder
	// warned is set once a refused RPC on this connection has been logged at warn level;
	// later ones are logged at debug level (a peer that lies keeps lying, at heartbeat pace).
	warned atomic.Bool
}

// serveRaft serves raft RPCs on an accepted raft connection, authenticated as peer (or "" if
// not checked), until it breaks, the peer sends something malformed, or the transport closes;
// then it closes the connection. It runs on the goroutine that accepted c (counted in t.wg).
//
// One goroutine does all of it, where a NetworkTransport of its own would read on one and
// forward to the Consumer on another: under load a hand-off between goroutines is a wait for
// a processor, and a follower's answer to AppendEntries is what every write waits for.
func (t *TCPTransport) serveRaft(c *trackedConn, peer raft.ServerID) {
	defer c.Close()
	in := &inboundRaft{t: t, conn: c, peer: peer, r: bufio.NewReaderSize(c, raftReceiveBuffer)}
	in.dec = codec.NewDecoder(in.r, &codec.MsgpackHandle{})
	w := bufio.NewWriter(c)
	// Answers are encoded as NetworkTransport encodes them by default (its
	// MsgpackUseNewTimeFormat off): the sender decodes either way.
	enc := codec.NewEncoder(w, &codec.MsgpackHandle{BasicHandle: codec.BasicHandle{TimeNotBuiltin: true}})
	for {
		rpc, respCh, snapshot, err := in.read()
		if err != nil {
			in.readFailed(err)
			return
		}
		resp, ok := in.dispatch(rpc, respCh)
		if !ok {
			return // the transport is closing: the sender sees the connection drop
		}
		var text string
		if resp.Error != nil {
			text = resp.Error.Error()
		}
		if err := enc.Encode(text); err != nil {
			in.writeFailed(err)
			return
		}
		if err := enc.Encode(resp.Response); err != nil {
			in.writeFailed(err)
			return
		}
		if err := w.Flush(); err != nil {
			in.writeFailed(err)
			return
		}
		if snapshot != nil && snapshot.N > 0 {
			// raft answered before reading the whole snapshot (it failed part way): what is
			// left would be read as requests. The answer is out; the sender dials again.
			return
		}
	}
}

// read decodes the next request; respCh is its RespChan. For InstallSnapshot, snapshot is the
// reader of its data (rpc.Reader), bounded by the size the request states.
func (in *inboundRaft) read() (rpc raft.RPC, respCh chan raft.RPCResponse, snapshot *io.LimitedReader, err error) {
	kind, err := in.r.ReadByte()
	if err != nil {
		return rpc, nil, nil, err
	}
	switch kind {
	case rpcAppendEntries:
		rpc.Command = new(raft.AppendEntriesRequest)
	case rpcRequestVote:
		rpc.Command = new(raft.RequestVoteRequest)
	case rpcRequestPreVote:
		rpc.Command = new(raft.RequestPreVoteRequest)
	case rpcInstallSnapshot:
		rpc.Command = new(raft.InstallSnapshotRequest)
	case rpcTimeoutNow:
		rpc.Command = new(raft.TimeoutNowRequest)
	default:
		return rpc, nil, nil, fmt.Errorf("unknown raft RPC type %d", kind)
	}
	if err := in.dec.Decode(rpc.Command); err != nil {
		return rpc, nil, nil, fmt.Errorf("decoding %s: %w", rpcName(rpc.Command), err)
	}
	if req, ok := rpc.Command.(*raft.InstallSnapshotRequest); ok {
		if req.Size < 0 {
			return rpc, nil, nil, fmt.Errorf("InstallSnapshot of %d bytes", req.Size)
		}
		snapshot = &io.LimitedReader{R: in.r, N: req.Size}
		rpc.Reader = snapshot
	}
	respCh = make(chan raft.RPCResponse, 1) // never blocks raft
	rpc.RespChan = respCh
	return rpc, respCh, snapshot, nil
}

// dispatch checks who speaks and hands rpc to the heartbeat handler (a bare heartbeat,
// isHeartbeat, when one is installed and heartbeatGate lets it) or the Consumer, then waits
// for the answer; a refused RPC is answered with an ErrPeerIdentity error. ok is false if the
// transport closed first: the RPC is then not answered, and the caller drops the connection.
func (in *inboundRaft) dispatch(rpc raft.RPC, respCh <-chan raft.RPCResponse) (resp raft.RPCResponse, ok bool) {
	if _, ok := rpc.Command.(*raft.TimeoutNowRequest); ok {
		in.t.gate.closeFast()
		defer in.t.gate.openFast()
	}
	if in.allowed(rpc) {
		if cb := in.t.heartbeat.Load(); cb != nil && isHeartbeat(rpc.Command) && in.t.gate.enterFast() {
			(*cb)(rpc)
			in.t.gate.leaveFast()
		} else {
			select {
			case in.t.consume <- rpc:
			case <-in.t.ctx.Done():
				return resp, false
			}
		}
	}
	select {
	case resp = <-respCh:
		return resp, true
	case <-in.t.ctx.Done():
		return resp, false
	}
}

// allowed reports whether rpc names the peer the connection is authenticated as (always, if
// identity is not checked); if not, it answers rpc with an ErrPeerIdentity error and logs the
// refusal. A refused InstallSnapshot's data is read and discarded first, so that the stream
// stays in step and the sender reads the refusal: that costs no more than the snapshot an
// authenticated peer may send anyway.
func (in *inboundRaft) allowed(rpc raft.RPC) bool {
	if in.peer == "" {
		return true
	}
	err := checkRPCSpeaker(rpc.Command, in.peer)
	if err == nil {
		return true
	}
	level := slog.LevelDebug
	if in.warned.CompareAndSwap(false, true) {
		level = slog.LevelWarn
	}
	in.t.logger.Log(context.Background(), level, "transport: refused raft RPC", "remote", in.conn.raw.RemoteAddr().String(), "error", err)
	if rpc.Reader != nil {
		_, _ = io.Copy(io.Discard, rpc.Reader)
	}
	rpc.Respond(emptyResponse(rpc.Command), err)
	return false
}

// readFailed logs why reading a request failed, unless the connection simply ended: the peer
// closed it at a request's boundary (a plain EOF), or the transport is closing.
func (in *inboundRaft) readFailed(err error) {
	if err == io.EOF || in.t.ctx.Err() != nil {
		return
	}
	cause := err
	if inner := errors.Unwrap(err); inner != nil {
		cause = inner // under read's "decoding ..." wrapper
	}
	level := slog.LevelWarn
	if isConnError(codecCause(cause)) {
		level = slog.LevelDebug // the connection broke mid-request: the sender will say why
	}
	in.t.logger.Log(context.Background(), level, "transport: dropped raft connection", "remote", in.conn.raw.RemoteAddr().String(), "error", err)
}

// writeFailed logs why an answer could not be written, unless the transport is closing.
func (in *inboundRaft) writeFailed(err error) {
	if in.t.ctx.Err() != nil {
		return
	}
	in.t.logger.Debug("transport: raft answer not written", "remote", in.conn.raw.RemoteAddr().String(), "error", err)
}
