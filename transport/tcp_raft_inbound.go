package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// The receiving side of raft's RPCs over TCP: each accepted raft connection is read by a
// NetworkTransport of its own, whose RPCs a forwarder checks and passes on to the transport's
// Consumer (see the overview in tcp_raft.go).

// inboundRaft is one accepted raft connection: a NetworkTransport of its own reads its RPCs,
// forward passes them on to the transport's Consumer.
//
// Goroutines: raft's accept loop of net (it takes the one connection, then waits for net to
// close), raft's connection handler (which owns conn and closes it when done; Close waits for
// that through t.wg, counted in serveRaft) and forward (in t.wg). forward closes net when the
// connection closes or the transport does, which ends the other two.
type inboundRaft struct {
	t     *TCPTransport
	conn  *trackedConn
	peer  raft.ServerID // the ID the connection is authenticated as; "" if not checked
	net   *raft.NetworkTransport
	layer *oneConnLayer
	done  chan struct{} // closed when conn closes
	// warned is set once a refused RPC on this connection has been logged at warn level;
	// later ones are logged at debug level (a peer that lies keeps lying, at heartbeat pace).
	warned atomic.Bool
}

// serveRaft hands an accepted raft connection, authenticated as peer (or "" if not checked), to
// a NetworkTransport of its own.
func (t *TCPTransport) serveRaft(c *trackedConn, peer raft.ServerID) {
	if !t.enter() { // counts c in t.wg until raft closes it
		_ = c.Close()
		return
	}
	in := &inboundRaft{t: t, conn: c, peer: peer, done: make(chan struct{})}
	c.onClose = func() {
		close(in.done)
		t.wg.Done()
	}
	in.layer = &oneConnLayer{conn: make(chan net.Conn, 1), done: make(chan struct{}), addr: t.ln.Addr()}
	in.net = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  in.layer,
		Timeout: t.cfg.rpcTimeout,
		Logger:  t.raftLogger,
	})
	in.net.SetHeartbeatHandler(in.heartbeat)
	if !t.spawn(in.forward) {
		_ = in.net.Close()
		_ = c.Close()
		return
	}
	in.layer.conn <- c // raft's accept loop takes it from here
}

// forward passes the RPCs read from the connection on to the transport's Consumer until the
// connection or the transport closes, then closes the connection's NetworkTransport.
func (in *inboundRaft) forward() {
	defer func() {
		_ = in.net.Close()
		// If raft's accept loop never took the connection, nobody else will close it.
		select {
		case c := <-in.layer.conn:
			_ = c.Close()
		default:
		}
	}()
	for {
		select {
		case rpc := <-in.net.Consumer():
			in.deliver(rpc)
		case <-in.done:
			return
		case <-in.t.ctx.Done():
			return
		}
	}
}

// deliver checks who speaks and passes rpc on to the transport's Consumer, or answers a
// refused one with an error. An RPC still undelivered when the connection or the transport
// closes is not answered: forward then closes the connection's NetworkTransport, which ends
// the handler waiting for the answer and drops the connection, so the sender sees a broken
// connection (ErrUnreachable), as it did when NetworkTransport shut down by itself.
func (in *inboundRaft) deliver(rpc raft.RPC) {
	if !in.allowed(rpc) {
		return
	}
	select {
	case in.t.consume <- rpc:
	case <-in.done:
	case <-in.t.ctx.Done():
	}
}

// heartbeat is the connection's NetworkTransport's fast path for heartbeats: after the check,
// the transport's heartbeat handler if one is installed, else the Consumer.
func (in *inboundRaft) heartbeat(rpc raft.RPC) {
	if cb := in.t.heartbeat.Load(); cb != nil {
		if in.allowed(rpc) {
			(*cb)(rpc)
		}
		return
	}
	in.deliver(rpc)
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
		// The connection's handler waits for the answer meanwhile: nobody else reads.
		_, _ = io.Copy(io.Discard, rpc.Reader)
	}
	rpc.Respond(emptyResponse(rpc.Command), err)
	return false
}

// oneConnLayer is the raft.StreamLayer of an inbound raft connection's NetworkTransport: Accept
// yields the connection once, then waits until the layer is closed.
type oneConnLayer struct {
	conn chan net.Conn // holds the connection until raft's accept loop takes it
	done chan struct{} // closed by Close, which only NetworkTransport.Close calls (once)
	addr net.Addr
}

func (l *oneConnLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conn:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *oneConnLayer) Close() error {
	close(l.done)
	return nil
}

func (l *oneConnLayer) Addr() net.Addr { return l.addr }

// Dial is never called: this NetworkTransport only receives.
func (l *oneConnLayer) Dial(raft.ServerAddress, time.Duration) (net.Conn, error) {
	return nil, errors.New("transport: an inbound raft connection does not dial")
}
