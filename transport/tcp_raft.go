package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Raft's side of the TCP transport, in hashicorp/raft's NetworkTransport wire format (so its
// heartbeat fast path and InstallSnapshot streaming work as raft expects):
//
//   - Sending: one NetworkTransport, t.net, over a streamLayer whose Dial runs the transport's
//     own dial (TLS, identity check, preamble) and whose Accept yields nothing.
//   - Receiving: every accepted connection whose preamble said "raft" is served by the
//     goroutine that accepted it (serveRaft, tcp_raft_inbound.go), which decodes each RPC,
//     checks that its header names the peer the connection was authenticated as
//     (WithPeerIDCheck), hands it to t.consume, the transport's Consumer, and writes raft's
//     answer back.
//
// NetworkTransport's Dial receives only an address, but the identity check needs the server ID
// raft is sending to. So the methods below hand NetworkTransport a dial target that carries
// both, "address\x00id" (an address never contains a NUL byte); connections are pooled by that
// target, hence per identity. EncodePeer and DecodePeer deal in plain addresses.

// streamLayer is the raft.StreamLayer of a TCPTransport's sending NetworkTransport.
type streamLayer struct {
	t    *TCPTransport
	done chan struct{} // closed by Close, which only NetworkTransport.Close calls (once)
}

// Accept blocks until the layer is closed, then returns net.ErrClosed: inbound connections go
// to NetworkTransports of their own (serveRaft).
func (s *streamLayer) Accept() (net.Conn, error) {
	<-s.done
	return nil, net.ErrClosed
}

// Close makes Accept fail; NetworkTransport calls it from its own Close.
func (s *streamLayer) Close() error {
	close(s.done)
	return nil
}

// Addr returns the transport's listen address.
func (s *streamLayer) Addr() net.Addr { return s.t.ln.Addr() }

// Dial connects to a dial target made by dialTarget. The timeout NetworkTransport passes (its
// RPC timeout) is not used: the transport's dial and handshake timeouts bound a dial.
func (s *streamLayer) Dial(target raft.ServerAddress, _ time.Duration) (net.Conn, error) {
	addr, id := splitDialTarget(target)
	return s.t.dial(id, addr, kindRaft)
}

// dialTarget joins a peer's address and ID into what NetworkTransport dials and pools by.
func dialTarget(id raft.ServerID, addr raft.ServerAddress) raft.ServerAddress {
	return addr + "\x00" + raft.ServerAddress(id)
}

func splitDialTarget(target raft.ServerAddress) (raft.ServerAddress, raft.ServerID) {
	addr, id, _ := strings.Cut(string(target), "\x00")
	return raft.ServerAddress(addr), raft.ServerID(id)
}

// Consumer returns the channel on which raft RPCs sent to t arrive. Under WithPeerIDCheck only
// RPCs whose header names the peer their connection was authenticated as arrive.
func (t *TCPTransport) Consumer() <-chan raft.RPC { return t.consume }

// SetHeartbeatHandler installs raft's fast path for heartbeats, run on the connection's
// goroutine instead of going through Consumer (nil removes it). Under WithPeerIDCheck it sees
// only heartbeats from the peer their connection was authenticated as.
func (t *TCPTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		t.heartbeat.Store(nil)
		return
	}
	t.heartbeat.Store(&cb)
}

// AppendEntriesPipeline is not supported: raft falls back to one AppendEntries at a time per
// follower. hashicorp/raft v1.7.3's pipeline over NetworkTransport can deadlock a leader's
// replication to a follower for good (and with it raft's Shutdown): when the follower answers
// a pipelined append with a failure, raft's decoding goroutine returns while its sending loop
// may still push one more request into an unbuffered channel that nobody reads any more. It
// happened in this package's tests, around a leadership transfer. hashicorp measured the
// pipeline's gain at its default depth as small (raft PR #541).
func (t *TCPTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// AppendEntries sends an AppendEntries RPC to target and waits for its response. One without
// entries (a heartbeat, a probe of the follower's log) that succeeds is a round trip measured
// for [TCPTransport.PeerStats], unless the transport dialled the peer meanwhile (the time would
// be the dial's and the handshake's).
func (t *TCPTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if len(args.Entries) != 0 {
		return t.rpcError("AppendEntries", target, t.net.AppendEntries(id, dialTarget(id, target), args, resp))
	}
	peer := t.peers.byID(id) // nil before the first dial: that round trip includes it
	var dials uint64
	if peer != nil {
		dials = peer.dials.Load()
	}
	start := time.Now()
	err := t.net.AppendEntries(id, dialTarget(id, target), args, resp)
	if err == nil && peer != nil && peer.dials.Load() == dials {
		peer.observeRTT(time.Since(start))
	}
	return t.rpcError("AppendEntries", target, err)
}

// RequestVote sends a RequestVote RPC to target and waits for its response.
func (t *TCPTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.rpcError("RequestVote", target, t.net.RequestVote(id, dialTarget(id, target), args, resp))
}

// RequestPreVote sends a RequestPreVote RPC to target and waits for its response.
func (t *TCPTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.rpcError("RequestPreVote", target, t.net.RequestPreVote(id, dialTarget(id, target), args, resp))
}

// TimeoutNow sends a TimeoutNow RPC to target and waits for its response.
func (t *TCPTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.rpcError("TimeoutNow", target, t.net.TimeoutNow(id, dialTarget(id, target), args, resp))
}

// InstallSnapshot streams a snapshot to target on a connection of its own and waits for the
// response. Its I/O deadline is the RPC timeout scaled by the snapshot's size (one timeout per
// 256 KiB, raft's rule), at least one RPC timeout.
func (t *TCPTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.rpcError("InstallSnapshot", target, t.net.InstallSnapshot(id, dialTarget(id, target), args, resp, data))
}

// EncodePeer returns the address as bytes; the ID travels separately in raft's configuration.
func (t *TCPTransport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

// DecodePeer is the inverse of EncodePeer.
func (t *TCPTransport) DecodePeer(buf []byte) raft.ServerAddress { return raft.ServerAddress(buf) }

// rpcError maps what NetworkTransport returns onto the package's errors: dial failures already
// are ErrUnreachable or ErrClosed; an RPC interrupted by Close is ErrClosed; an I/O timeout is
// context.DeadlineExceeded; a connection that broke is ErrUnreachable; a peer that refused the
// RPC's header ID (it arrives as text) is ErrPeerIdentity with ErrUnreachable; anything else is
// the error the peer's raft answered with, or a protocol failure, wrapped as it is.
func (t *TCPTransport) rpcError(name string, target raft.ServerAddress, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnreachable) || errors.Is(err, ErrClosed):
		return err
	case t.ctx.Err() != nil:
		return fmt.Errorf("%w: %s to %s interrupted: %w", ErrClosed, name, target, err)
	case strings.HasPrefix(err.Error(), ErrPeerIdentity.Error()):
		return fmt.Errorf("%w: %s: %s refused: %w%s", ErrUnreachable, target, name, ErrPeerIdentity, strings.TrimPrefix(err.Error(), ErrPeerIdentity.Error()))
	}
	cause := codecCause(err)
	switch {
	case errors.Is(cause, os.ErrDeadlineExceeded):
		return fmt.Errorf("transport: %s to %s: %w (%w)", name, target, context.DeadlineExceeded, err)
	case isConnError(cause):
		return fmt.Errorf("%w: %s: %s: %w", ErrUnreachable, target, name, err)
	}
	return fmt.Errorf("transport: %s to %s: %w", name, target, err)
}

// codecCause returns the error under go-msgpack's decode and encode errors, which name their
// cause with a Cause method rather than Unwrap (so errors.Is does not see an I/O timeout or an
// EOF inside them); err itself if there is none.
func codecCause(err error) error {
	for range 8 { // the chain is short; bound it anyway
		c, ok := err.(interface{ Cause() error })
		if !ok {
			return err
		}
		next := c.Cause()
		if next == nil || next == err {
			return err
		}
		err = next
	}
	return err
}

// isConnError reports whether err says the connection broke (as opposed to the peer answering
// with an error).
func isConnError(err error) bool {
	var netErr net.Error
	var errno syscall.Errno
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &netErr) || errors.As(err, &errno)
}

// newRaftNetLogger gives raft's NetworkTransport an hclog.Logger writing to l, at Info and
// above (its Debug level logs every accepted connection); nil discards.
func newRaftNetLogger(l *slog.Logger) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft-net",
		Level:       hclog.Info,
		Output:      slogLineWriter{l},
		DisableTime: true,
	})
}

// slogLineWriter turns hclog's formatted lines ("[ERROR] raft-net: message: key=value") into
// slog records at the matching level.
type slogLineWriter struct{ l *slog.Logger }

func (w slogLineWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			switch line[1:end] {
			case "ERROR":
				level = slog.LevelError
			case "WARN":
				level = slog.LevelWarn
			case "DEBUG", "TRACE":
				level = slog.LevelDebug
			}
			line = strings.TrimSpace(line[end+1:])
		}
	}
	w.l.Log(context.Background(), level, line)
	return len(p), nil
}
