// Package transport carries the messages of a kvstore cluster: hashicorp/raft's RPCs and
// kvstore's own request/reply calls (forwarding a write to the leader, asking the leader for a
// read index, lease keep-alives, membership changes).
//
// A node talks to the network through one [Transport]. This package provides two:
//
//   - [TCPTransport] ([NewTCP]), for nodes in separate processes on separate machines: one
//     listener per node carries raft's RPCs and Calls, optionally over mutual TLS 1.3
//     ([WithTLS], [LoadTLSConfig]) with certificates bound to raft server IDs
//     ([WithLocalID], [WithPeerIDCheck]).
//   - [MemTransport], an in-memory implementation whose nodes live in one process and are
//     joined by a [Network] that can inject faults (partitions, isolation, one-way link cuts).
//
// A TCPTransport also counts its traffic per peer, bytes each way and the round trips of raft's
// heartbeats, for metrics ([PeerStatsReporter], optional for other transports).
//
// Both implement [AddressValidator], with which a node checks every peer address it is given
// before it records or dials it: over TCP an address is "host:port" with a dialable host and a
// port from 1 to 65535, on a Network any non-empty name. A malformed address is an error
// wrapping [ErrInvalidAddress].
//
// # Guarantees
//
// These hold for both implementations.
//
//   - Every operation is bounded: [Transport.Call] honours its context, raft RPCs are bounded by
//     a timeout (see [WithRPCTimeout]). Nothing waits forever on an unreachable, closed or
//     unresponsive peer. Over TCP, connecting is bounded too ([WithDialTimeout],
//     [WithHandshakeTimeout]), and a Call without a deadline to a peer that vanished without
//     closing its connections fails once TCP keep-alive probes give up (about 20 s).
//   - Failures are reported with errors matchable by [errors.Is]: [ErrUnreachable] when the
//     peer is unknown, closed, cut off, cannot be dialled, refuses the TLS handshake or drops
//     the connection (the error names the peer), [ErrClosed] when the local transport is
//     closed, [ErrNoHandler] when the peer installed no [Handler], and the context's error (or
//     [context.DeadlineExceeded] for raft RPCs) when time runs out. TCP adds [ErrPeerIdentity]
//     (with ErrUnreachable) and [ErrTooLarge].
//   - A Call failure that matches [ErrNotDelivered] certainly did not reach the peer's handler
//     (no connection could be made, the request direction is cut, the peer has no handler...):
//     it may be sent again. Any other failure — a request whose reply is lost, a connection
//     lost with the request on it, a deadline — may have been processed by the peer; callers
//     must treat it as "outcome unknown", as over a real network.
//   - Close is idempotent and fails pending and future operations to and from the node. It
//     returns only after the Handlers running on the node have returned. The only other
//     goroutine a MemTransport starts streams an InstallSnapshot and ends before that RPC
//     returns, which Close makes happen at once. A TCPTransport's Close closes every
//     connection and waits for every goroutine it started; raft's NetworkTransport, which it
//     uses, keeps one accept goroutine that ends on its own right after Close.
//
// # Threading contracts
//
// All methods of a Transport are safe for concurrent use. A [Handler] runs on its own goroutine
// per request, concurrently with other handlers; it must return promptly once its context is
// cancelled, because Close waits for running handlers. Request and reply byte slices are copied
// at the transport boundary, so neither side may observe the other's later writes. Raft RPC
// arguments and responses are passed by pointer between in-process nodes, like raft's own
// InmemTransport: raft treats them, and in particular [raft.Log.Data], as immutable. Over TCP
// they are encoded, by raft's own NetworkTransport.
//
// A heartbeat handler installed with SetHeartbeatHandler runs on the sending node's goroutine
// (MemTransport) or on the receiving connection's goroutine (TCPTransport) and must not block
// (raft's does not).
//
// # Calls over TCP
//
// Calls travel in frames (length, type, request ID) on connections of their own, pipelined:
// many Calls share a connection and replies are matched by ID. A handler's context carries the
// caller's deadline, sent as the time remaining (the two machines' clocks need not agree), and
// is cancelled when the caller cancels (a cancel frame), when the connection breaks, or when
// either transport closes. A peer may run any number of handlers at once on a node: the TLS
// handshake, not the transport, decides who is a peer. What the transport does bound is the
// number of connections it accepts ([WithMaxInboundConns]), and apart from those the number
// still in their handshake ([WithMaxHandshakingConns]): clients that have proven nothing cannot
// take the slots of those that have.
//
// # TLS
//
// With [WithTLS] every connection is mutual TLS 1.3: the server requires and verifies a client
// certificate against its CA pool, the client verifies the server's chain against the same
// pool; a plaintext connection fails its handshake and is closed at once, and one that stays
// silent is closed at the handshake timeout. [LoadTLSConfig] builds the config from PEM files
// and re-reads them when they change, so certificates rotate without a restart; it checks the
// chain, not a host name.
//
// The CA alone says only that a peer is some member. [WithPeerIDCheck] binds each member's
// certificate to its raft server ID, which the certificate must carry as a DNS SAN, in both
// directions: a dialer verifies that the server's certificate names the ID it expects there
// (raft always knows it; [Transport.Call] takes it as an argument, empty when unknown); every
// dialer states its own ID ([WithLocalID]) when it connects, and the server refuses one whose
// certificate does not name it, with the reason, which the dialer reports as [ErrPeerIdentity];
// and a raft RPC must name, in its header, the ID its connection was authenticated as, or it
// is answered with ErrPeerIdentity and never reaches raft. So a certificate issued to n9, or
// n1's certificate in other hands, cannot be used to pose as n3. A node whose own certificate
// does not name its ID fails in [NewTCP].
//
// # Virtual time
//
// A MemTransport blocks only on channels, timers, contexts and WaitGroups, never on a held mutex,
// so a whole in-process cluster runs inside a testing/synctest bubble in virtual time. Create
// the Network and its transports inside the bubble that uses them. A TCPTransport uses real
// sockets and cannot run in a bubble.
//
// # Raft shutdown
//
// raft.Raft closes its transport when Shutdown().Error() is called on it (the transport
// implements [raft.WithClose]); a node that shares one Transport between raft and its own
// calls loses both when raft shuts down.
package transport

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// Transport is what a node needs from the network: raft's RPCs plus kvstore's own
// request/reply calls.
type Transport interface {
	raft.Transport
	raft.WithPreVote
	raft.WithClose

	// Call sends one request to the node at target and waits for its reply. id is the raft
	// server ID the caller expects at target, or empty when it does not know it; a transport
	// that authenticates its peers (the TCP transport with WithPeerIDCheck) refuses a target
	// whose identity is not id, others ignore it. Call honours ctx (deadline/cancel) and
	// returns ErrUnreachable (wrapped, with the target named) when the target is unknown,
	// closed or cut off, ErrClosed when this transport is closed, ErrNoHandler when the
	// target has no handler installed. A failure that certainly left the target's handler
	// untouched also matches ErrNotDelivered.
	Call(ctx context.Context, id raft.ServerID, target raft.ServerAddress, request []byte) ([]byte, error)

	// SetHandler installs the function that answers Calls arriving at this transport. Calls run
	// concurrently, each on its own goroutine; the ctx handed to the handler is cancelled when
	// the caller gives up or the transport closes.
	SetHandler(h Handler)
}

// Handler answers one request delivered by [Transport.Call] and returns the reply. The request
// slice belongs to the handler; the returned slice is copied before it reaches the caller.
// The context carries the caller's deadline (not its values) and is cancelled when the caller
// gives up or either transport closes; a handler must return promptly after that.
type Handler func(ctx context.Context, request []byte) []byte

// DefaultRPCTimeout bounds one raft RPC (enqueueing it at the peer and waiting for its
// response) when no [WithRPCTimeout] option is given.
const DefaultRPCTimeout = time.Second

// snapshotTimeoutFactor scales the RPC timeout for InstallSnapshot, which streams a whole
// snapshot and makes the receiver write it out before answering.
const snapshotTimeoutFactor = 10

// Option configures a transport created by this package.
type Option func(*config)

// config is the set of knobs an Option may turn. The fields after rpcTimeout concern only the
// TCP transport (tcp_options.go); they are recorded as given and validated by NewTCP.
type config struct {
	rpcTimeout time.Duration

	listener         net.Listener
	advertise        raft.ServerAddress
	tls              *tls.Config
	localID          raft.ServerID
	localIDSet       bool
	peerIDCheck      bool
	dialTimeout      time.Duration
	handshakeTimeout time.Duration
	maxMessageSize   int
	maxInbound       int
	// maxHandshaking is min(DefaultMaxHandshakingConns, maxInbound) unless set.
	maxHandshaking    int
	maxHandshakingSet bool
	logger            *slog.Logger
}

// newConfig applies opts over the defaults.
func newConfig(opts []Option) config {
	c := config{
		rpcTimeout:       DefaultRPCTimeout,
		dialTimeout:      DefaultDialTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		maxMessageSize:   DefaultMaxMessageSize,
		maxInbound:       DefaultMaxInboundConns,
	}
	for _, o := range opts {
		o(&c)
	}
	if !c.maxHandshakingSet {
		c.maxHandshaking = min(DefaultMaxHandshakingConns, c.maxInbound)
	}
	return c
}

// WithRPCTimeout sets how long one raft RPC (AppendEntries, RequestVote, RequestPreVote,
// TimeoutNow) may take before it fails with an error wrapping [context.DeadlineExceeded];
// InstallSnapshot gets ten times as long in a MemTransport, and over TCP one timeout per
// 256 KiB of snapshot (raft's rule). A non-positive d selects [DefaultRPCTimeout]. Calls are
// bounded by their context, not by d; over TCP, d is also the I/O deadline of Call frames
// (per 256 KiB) and the time a peer has to answer a ping on a silent Call connection.
func WithRPCTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			d = DefaultRPCTimeout
		}
		c.rpcTimeout = d
	}
}
