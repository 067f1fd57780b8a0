package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TCPTransport is a [Transport] over TCP, optionally with mutual TLS, created by [NewTCP]. One
// listener carries both raft's RPCs and Calls: every connection opens with a preamble naming
// the protocol it carries.
//
//   - Raft RPCs travel in hashicorp/raft's NetworkTransport wire format. They are sent by a
//     NetworkTransport (connection pooling, InstallSnapshot streaming) over a stream layer fed
//     by this transport's dialer, and read by a goroutine per accepted connection that hands
//     them straight to raft (tcp_raft_inbound.go). AppendEntries pipelining is turned off (see
//     AppendEntriesPipeline).
//   - Calls are framed (length-prefixed, with request IDs) and pipelined: many Calls are in
//     flight on one connection, replies matched by ID, over a few pooled connections per peer.
//     The caller's remaining time travels with the request and becomes the handler's deadline;
//     a caller that gives up sends a cancel, and a lost connection cancels every handler it
//     fed.
//
// All methods are safe for concurrent use.
type TCPTransport struct {
	cfg       config
	ln        net.Listener
	advertise raft.ServerAddress
	serverTLS *tls.Config // nil without TLS
	clientTLS *tls.Config // nil without TLS
	logger    *slog.Logger
	dialer    net.Dialer

	// net sends raft's RPCs, over stream; RPCs arriving are read by serveRaft, one goroutine
	// per connection (tcp_raft_inbound.go), which hands them to consume.
	net        *raft.NetworkTransport
	stream     *streamLayer
	consume    chan raft.RPC
	heartbeat  atomic.Pointer[func(raft.RPC)]
	gate       heartbeatGate // the fast path closed while a TimeoutNow is handled
	raftLogger hclog.Logger  // for net

	handler atomic.Pointer[Handler]
	calls   callPool
	limits  connLimits
	peers   peerTable // traffic per peer (peerstats.go)

	// ctx is cancelled by Close; it parents every connection, dial and handler context.
	ctx    context.Context
	cancel context.CancelFunc

	// lifecycle's wg counts every goroutine the transport started (accept loop, connection
	// servers, call readers and writers, dials, handlers, raft RPC forwarders) and every
	// inbound raft connection until raft's NetworkTransport closes it; its mu also guards conns.
	lifecycle
	conns map[*trackedConn]struct{} // open connections, both directions, closed by Close
	// callServers are the Call connections served, told goaway by Close (tcp_goaway.go).
	callServers map[*callServer]struct{}
	closeDone   chan struct{}

	hooks transportHooks // tests only
}

var _ Transport = (*TCPTransport)(nil)

// NewTCP returns a transport listening on bind ("host:port"; port 0 picks a free port), or on
// the listener given with [WithListener] (then bind must be ""). A transport listening on all
// interfaces (":7000", "0.0.0.0:7000") needs [WithAdvertiseAddr]. Options: [WithAdvertiseAddr],
// [WithTLS], [WithLocalID], [WithPeerIDCheck], [WithRPCTimeout], [WithDialTimeout],
// [WithHandshakeTimeout], [WithMaxMessageSize], [WithMaxInboundConns],
// [WithMaxHandshakingConns], [WithLogger]. A bad option fails with an error wrapping
// [ErrInvalidOption] and leaves nothing open (a listener given with WithListener is closed);
// so does, under WithPeerIDCheck, a certificate of this node's that does not name its
// WithLocalID.
//
// The transport serves from the moment NewTCP returns: raft RPCs wait in its Consumer
// channel, Calls fail with ErrNoHandler until SetHandler.
func NewTCP(bind string, opts ...Option) (*TCPTransport, error) {
	cfg := newConfig(opts)
	fail := func(err error) (*TCPTransport, error) {
		if cfg.listener != nil {
			_ = cfg.listener.Close()
		}
		return nil, err
	}
	if err := cfg.validateTCP(bind); err != nil {
		return fail(err)
	}
	t := &TCPTransport{
		cfg:       cfg,
		logger:    cfg.logger,
		conns:     make(map[*trackedConn]struct{}),
		closeDone: make(chan struct{}),
		dialer:    net.Dialer{KeepAliveConfig: keepAlive},
	}
	if t.logger == nil {
		t.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.tls != nil {
		var err error
		if t.serverTLS, err = serverTLSConfig(cfg.tls); err != nil {
			return fail(err)
		}
		if t.clientTLS, err = clientTLSConfig(cfg.tls); err != nil {
			return fail(err)
		}
		if cfg.peerIDCheck {
			if err := checkOwnCertificate(cfg.tls, cfg.localID); err != nil {
				return fail(err)
			}
		}
	}
	t.limits.maxInbound, t.limits.maxHandshaking = int64(cfg.maxInbound), int64(cfg.maxHandshaking)
	t.ln = cfg.listener
	if t.ln == nil {
		lc := net.ListenConfig{KeepAliveConfig: keepAlive}
		ln, err := lc.Listen(context.Background(), "tcp", bind)
		if err != nil {
			return nil, fmt.Errorf("transport: listen on %s: %w", bind, err)
		}
		t.ln = ln
	}
	t.advertise = cfg.advertise
	if t.advertise == "" {
		addr := t.ln.Addr().String()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				_ = t.ln.Close()
				return nil, invalid("WithAdvertiseAddr", "required when listening on all interfaces (%s): peers cannot dial that", addr)
			}
		}
		t.advertise = raft.ServerAddress(addr)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.consume = make(chan raft.RPC)
	t.raftLogger = newRaftNetLogger(cfg.logger)
	t.stream = &streamLayer{t: t, done: make(chan struct{})}
	t.net = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          t.stream,
		MaxPool:         raftPoolSize,
		MaxRPCsInFlight: 1, // no pipelining: see AppendEntriesPipeline
		Timeout:         cfg.rpcTimeout,
		Logger:          t.raftLogger,
	})
	t.spawn(t.acceptLoop)
	return t, nil
}

// keepAlive probes idle connections so that a peer that vanished without closing them (power
// loss, partition) is noticed in about 20 s even when no deadline is running.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}

// raftPoolSize is how many idle connections per peer raft's NetworkTransport keeps: one for
// each sender that may have a request in flight to a peer at once (a kvstore leader has four:
// raft's heartbeats, raft's replication, the eager appender and its read rounds' heartbeats),
// so that none dials a fresh connection, and shakes hands again, because the others hold the
// idle ones.
const raftPoolSize = 4

// LocalAddr returns the address peers dial to reach this transport (see [WithAdvertiseAddr]).
func (t *TCPTransport) LocalAddr() raft.ServerAddress { return t.advertise }

// PeerStats returns the traffic counted per peer since t was created (see
// [PeerStatsReporter]): the bytes of raft's RPCs and of Calls on every connection to and from
// the peer, and the round trips of raft's AppendEntries RPCs without entries.
func (t *TCPTransport) PeerStats() []PeerStat { return t.peers.stats() }

var _ PeerStatsReporter = (*TCPTransport)(nil)

// ListenAddr returns the address the transport listens on, which differs from LocalAddr when
// an advertise address was given.
func (t *TCPTransport) ListenAddr() net.Addr { return t.ln.Addr() }

// SetHandler installs h to answer Calls arriving at t, replacing any previous handler; nil
// removes it, after which Calls to t fail with ErrNoHandler. Calls already running keep the
// handler they started with.
func (t *TCPTransport) SetHandler(h Handler) {
	if h == nil {
		t.handler.Store(nil)
		return
	}
	t.handler.Store(&h)
}

// Close stops listening, fails pending and future operations (raft RPCs and Calls, in both
// directions), tells the callers on each Call connection it serves which requests it accepted
// (the later ones fail with ErrNotDelivered there; it waits at most the RPC timeout for a
// caller that does not read), closes every connection, and returns once every goroutine the
// transport started has ended, handlers included (their contexts are cancelled). It is
// idempotent and returns nil; concurrent calls all return after the first has finished.
//
// raft's NetworkTransport, which sends raft's RPCs, runs one goroutine of its own, its accept
// loop, which it does not let anyone wait for: it ends right after its Accept fails, which
// Close makes happen.
func (t *TCPTransport) Close() error {
	if t.shut() {
		// No handler starts any more: tell the callers on our Call connections which of their
		// requests were accepted, so that they may send the others again.
		t.goAwayCallServers()
		t.cancel() // inbound raft connections stop waiting for raft's answers
		_ = t.ln.Close()
		_ = t.net.Close() // closes stream too: raft's accept loop ends
		t.mu.Lock()
		conns := make([]*trackedConn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		for _, c := range conns {
			_ = c.raw.Close()
		}
		t.wg.Wait()
		close(t.closeDone)
	}
	<-t.closeDone
	return nil
}

// trackedConn is a connection Close knows about. Conn is the stream traffic flows on (a
// *tls.Conn or the TCP connection itself); raw is the TCP connection, which Close closes
// directly so that no TLS alert can hold it up.
type trackedConn struct {
	net.Conn
	raw  net.Conn
	t    *TCPTransport
	once sync.Once
	// inbound says the connection was accepted, and counts in t.limits until closed;
	// handshaking, that it also counts as handshaking, until endHandshake.
	inbound     bool
	handshaking atomic.Bool
	// peer counts the bytes read and written through Read and Write (nil: not counted). It is
	// set once, by the goroutine that ran the handshake, before anyone else uses the
	// connection; the handshake itself reads and writes Conn and raw directly.
	peer *peerCounters
}

// track registers a new TCP connection (inbound: one accepted, already counted in t.limits
// as inbound and handshaking); it returns nil, after closing raw and releasing its counts, if
// t is closed.
func (t *TCPTransport) track(raw net.Conn, inbound bool) *trackedConn {
	c := &trackedConn{Conn: raw, raw: raw, t: t, inbound: inbound}
	c.handshaking.Store(inbound)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.release()
		_ = raw.Close()
		return nil
	}
	t.conns[c] = struct{}{}
	return c
}

// endHandshake stops counting an inbound connection as handshaking; it is idempotent.
func (c *trackedConn) endHandshake() {
	if c.handshaking.CompareAndSwap(true, false) {
		c.t.limits.handshaking.Add(-1)
	}
}

// release gives up the connection's counts in t.limits; only Close (or a failed track) calls
// it, once.
func (c *trackedConn) release() {
	c.endHandshake()
	if c.inbound {
		c.t.limits.inbound.Add(-1)
	}
}

// Close closes the TCP connection without a TLS close alert (the peer reads EOF either way) and
// forgets it. It is idempotent.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
		_ = c.raw.Close()
		c.release()
	})
	return nil
}

// Read reads from the stream. Once the transport is closing it reports a plain io.EOF, so that
// raft's connection handlers end quietly instead of logging a "closed connection" error.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.peer.countReceived(n)
	if err != nil && c.t.ctx.Err() != nil {
		err = io.EOF
	}
	return n, err
}

// Write writes to the stream and counts what was written to the peer.
func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.peer.countSent(n)
	return n, err
}

// The preamble opens every connection, after the TLS handshake if any:
//
//	"KVT", version 2, kind of traffic (kindRaft, kindCall)
//	ID length (one byte, 0: no ID), then the dialer's server ID (WithLocalID)
//
// The server answers one status byte: preambleOK, preambleBad (then it closes), or
// preambleIdentity, followed by the reason (a length byte and text), when it checks peer
// identity and the dialer's certificate does not name the ID it stated. The server reads the
// first five bytes before anything else, so a foreign program, or a version 1 transport (which
// stated no ID), is answered preambleBad at once.
var preamble = [4]byte{'K', 'V', 'T', 2}

const (
	kindRaft byte = 1 // hashicorp/raft NetworkTransport protocol
	kindCall byte = 2 // framed Calls (tcp_call.go)

	preambleOK       byte = 0
	preambleBad      byte = 1 // unknown magic, version or kind
	preambleIdentity byte = 2 // the dialer's certificate does not name the ID it stated
)

// acceptLoop accepts connections until the listener closes and serves each on its own
// goroutine.
func (t *TCPTransport) acceptLoop() {
	var delay time.Duration
	for {
		raw, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.logger.Warn("transport: accept failed", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-t.ctx.Done():
				return
			}
		}
		delay = 0
		if refusal := t.limits.admit(); refusal != "" {
			_ = raw.Close()
			t.limits.refused(t.logger, raw.RemoteAddr(), refusal, time.Now())
			continue
		}
		if tcp, ok := raw.(*net.TCPConn); ok {
			_ = tcp.SetKeepAliveConfig(keepAlive)
		}
		c := t.track(raw, true)
		if c == nil || !t.spawn(func() { t.serveConn(c) }) {
			if c != nil {
				_ = c.Close()
			}
			return
		}
	}
}

// serveConn runs the server side of the handshake on an accepted connection within the
// handshake timeout, then hands it to raft or serves its Calls.
func (t *TCPTransport) serveConn(c *trackedConn) {
	kind, peer, err := t.serverHandshake(c)
	c.endHandshake()
	if err != nil {
		switch {
		case t.ctx.Err() != nil:
		case errors.Is(err, io.EOF):
			// Connected and left without a word: a port probe or health check.
			t.logger.Debug("transport: connection closed before its preamble", "remote", c.raw.RemoteAddr().String())
		default:
			t.logger.Warn("transport: refused connection", "remote", c.raw.RemoteAddr().String(), "error", err)
		}
		_ = c.Close()
		return
	}
	switch kind {
	case kindRaft:
		t.serveRaft(c, peer)
	case kindCall:
		t.serveCalls(c)
	}
}

// serverHandshake completes TLS (if configured) and reads the preamble, all within the
// handshake timeout, and answers it. With WithPeerIDCheck it returns the ID the connection is
// authenticated as (the one the dialer stated, named by its certificate), and refuses the
// connection, telling the dialer why, when the certificate does not name it; without, peer is
// empty: nothing is authenticated beyond the CA.
func (t *TCPTransport) serverHandshake(c *trackedConn) (kind byte, peer raft.ServerID, err error) {
	_ = c.raw.SetDeadline(time.Now().Add(t.cfg.handshakeTimeout))
	var tc *tls.Conn
	if t.serverTLS != nil {
		tc = tls.Server(c.raw, t.serverTLS)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			return 0, "", fmt.Errorf("tls handshake: %w", err)
		}
		c.Conn = tc
	}
	var hello [len(preamble) + 2]byte // + kind + ID length
	if _, err := io.ReadFull(c.Conn, hello[:len(preamble)+1]); err != nil {
		return 0, "", fmt.Errorf("reading preamble: %w", err)
	}
	kind = hello[len(preamble)]
	if [4]byte(hello[:4]) != preamble || (kind != kindRaft && kind != kindCall) {
		_, _ = c.Conn.Write([]byte{preambleBad})
		return 0, "", fmt.Errorf("bad preamble %q", hello[:len(preamble)+1])
	}
	if _, err := io.ReadFull(c.Conn, hello[len(preamble)+1:]); err != nil {
		return 0, "", fmt.Errorf("reading preamble: %w", err)
	}
	stated := make([]byte, hello[len(preamble)+1])
	if _, err := io.ReadFull(c.Conn, stated); err != nil {
		return 0, "", fmt.Errorf("reading preamble: %w", err)
	}
	if t.cfg.peerIDCheck {
		peer = raft.ServerID(stated)
		if err := checkStatedID(tc.ConnectionState(), peer); err != nil {
			reason := strings.TrimPrefix(err.Error(), ErrPeerIdentity.Error()+": ")
			reason = reason[:min(len(reason), 255)]
			_, _ = c.Conn.Write(append([]byte{preambleIdentity, byte(len(reason))}, reason...))
			return 0, "", err
		}
	}
	if _, err := c.Conn.Write([]byte{preambleOK}); err != nil {
		return 0, "", fmt.Errorf("answering preamble: %w", err)
	}
	_ = c.raw.SetDeadline(time.Time{})
	c.peer = t.peers.accepted(raft.ServerID(stated), c.raw.RemoteAddr())
	return kind, peer, nil
}

// dial connects to the peer at addr for traffic of the given kind: TCP connect within the dial
// timeout, then TLS handshake (checking the server's identity against id when asked), preamble
// and its answer within the handshake timeout. It fails with ErrClosed when t is closed and
// with ErrUnreachable (naming addr) for everything else.
func (t *TCPTransport) dial(id raft.ServerID, addr raft.ServerAddress, kind byte) (*trackedConn, error) {
	if t.ctx.Err() != nil {
		return nil, fmt.Errorf("%w: dialling %s", ErrClosed, addr)
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.dialTimeout)
	raw, err := t.dialer.DialContext(ctx, "tcp", string(addr))
	cancel()
	if err != nil {
		if t.ctx.Err() != nil {
			return nil, fmt.Errorf("%w: dialling %s", ErrClosed, addr)
		}
		return nil, unreachableErr(addr, err)
	}
	c := t.track(raw, false)
	if c == nil {
		return nil, fmt.Errorf("%w: dialling %s", ErrClosed, addr)
	}
	peer := t.peers.dialled(id, addr)
	peer.noteDial()
	if err := t.clientHandshake(c, id, addr, kind); err != nil {
		_ = c.Close()
		if t.ctx.Err() != nil {
			return nil, fmt.Errorf("%w: dialling %s", ErrClosed, addr)
		}
		return nil, err
	}
	c.peer = peer
	return c, nil
}

// clientHandshake is the dialling side of serverHandshake.
func (t *TCPTransport) clientHandshake(c *trackedConn, id raft.ServerID, addr raft.ServerAddress, kind byte) error {
	_ = c.raw.SetDeadline(time.Now().Add(t.cfg.handshakeTimeout))
	if t.clientTLS != nil {
		tc := tls.Client(c.raw, clientTLSFor(t.clientTLS, addr))
		if err := tc.HandshakeContext(t.ctx); err != nil {
			return unreachableErr(addr, fmt.Errorf("tls handshake: %w", err))
		}
		if t.cfg.peerIDCheck && id != "" {
			if err := checkPeerID(tc.ConnectionState(), id); err != nil {
				return unreachableErr(addr, err)
			}
		}
		c.Conn = tc
	}
	hello := make([]byte, 0, len(preamble)+2+len(t.cfg.localID))
	hello = append(append(hello, preamble[:]...), kind, byte(len(t.cfg.localID)))
	hello = append(hello, t.cfg.localID...)
	if _, err := c.Conn.Write(hello); err != nil {
		return unreachableErr(addr, fmt.Errorf("sending preamble: %w", err))
	}
	// With TLS 1.3 the server judges our certificate after our side of the handshake is done:
	// a refusal arrives here, as an alert instead of the answer.
	var answer [2]byte
	if _, err := io.ReadFull(c.Conn, answer[:1]); err != nil {
		return unreachableErr(addr, fmt.Errorf("reading preamble answer: %w", err))
	}
	switch answer[0] {
	case preambleOK:
	case preambleIdentity:
		reason := []byte("(no reason given)")
		if _, err := io.ReadFull(c.Conn, answer[1:]); err == nil {
			reason = make([]byte, answer[1])
			if _, err := io.ReadFull(c.Conn, reason); err != nil {
				reason = []byte("(reason cut short)")
			}
		}
		return fmt.Errorf("%w: %s: %w: refused by the peer: %s", ErrUnreachable, addr, ErrPeerIdentity, reason)
	default:
		return unreachable(addr, "peer refused the preamble: not a compatible kvstore transport (another program, or another version of the transport protocol)")
	}
	_ = c.raw.SetDeadline(time.Time{})
	return nil
}
