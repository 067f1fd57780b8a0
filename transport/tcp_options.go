package transport

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// Defaults of the TCP transport's options.
const (
	// DefaultDialTimeout bounds establishing a TCP connection to a peer.
	DefaultDialTimeout = 2 * time.Second
	// DefaultHandshakeTimeout bounds what follows the TCP connect before a connection carries
	// traffic: the TLS handshake and the transport's own preamble, on both sides. An accepted
	// connection that stays silent is closed after it.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxMessageSize is the largest Call request or reply, in bytes (raft's own RPCs are
	// not limited by it).
	DefaultMaxMessageSize = 64 << 20
	// DefaultMaxInboundConns caps the connections a transport has accepted and not yet closed.
	// A member needs about five per peer (raft pools up to three, plus an InstallSnapshot
	// stream and one for Calls), so 1024 serves clusters of a hundred members and more with
	// room for reconnection churn, while bounding what a flood of connections can take:
	// memory, goroutines and file descriptors (Go raises the soft descriptor limit to the hard
	// one at startup, typically far above 1024).
	DefaultMaxInboundConns = 1024
	// DefaultMaxHandshakingConns caps the accepted connections still in their TLS handshake or
	// preamble, so that clients that have proven nothing can hold at most this share of
	// [DefaultMaxInboundConns], each for at most the handshake timeout. A whole cluster of a
	// dozen members reconnecting at once (about five connections each) fits; a dial refused
	// beyond it is retried by raft and by the next Call.
	DefaultMaxHandshakingConns = 64
)

// The options below configure only the TCP transport; a MemTransport ignores them.

// WithListener makes [NewTCP] serve on ln, which it owns from then on (Close closes it),
// instead of listening on a bind address. Tests pass a listener on port 0.
func WithListener(ln net.Listener) Option {
	return func(c *config) { c.listener = ln }
}

// WithAdvertiseAddr sets the address peers dial to reach this transport, which LocalAddr
// returns and raft records in its configuration: "host:port", reachable from the other nodes,
// well formed as [TCPTransport.ValidateAddress] requires (so not port 0, nor an unspecified
// host). It defaults to the listener's address, which is wrong behind NAT and is refused when
// the listener listens on all interfaces (0.0.0.0, ::).
func WithAdvertiseAddr(addr string) Option {
	return func(c *config) { c.advertise = raft.ServerAddress(addr) }
}

// WithTLS makes every connection, in and out, mutual TLS 1.3 with cfg (see [LoadTLSConfig],
// which builds a suitable one from files and reloads them). cfg is cloned and must provide:
//
//   - this node's certificate for both roles: Certificates, or GetCertificate and
//     GetClientCertificate;
//   - the CA pool that signs the peers: ClientCAs (or GetConfigForClient) to verify the
//     client certificates of incoming connections, which are always required and verified;
//     and RootCAs, or InsecureSkipVerify with a VerifyConnection, to verify servers. With
//     plain RootCAs, crypto/tls also checks the dialled host name against the server's
//     certificate; [LoadTLSConfig] checks the chain only, and identity is left to
//     [WithPeerIDCheck].
//
// A plaintext connection to a TLS transport fails its handshake and is closed.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) { c.tls = cfg }
}

// WithLocalID sets this node's raft server ID, which the transport states to every peer it
// dials (in the preamble that opens each connection), and which its own certificate must name
// under [WithPeerIDCheck]. Give it whenever the ID is known: a peer that checks identity
// refuses a dialer that states none. id must be 1 to 255 bytes.
func WithLocalID(id raft.ServerID) Option {
	return func(c *config) { c.localID, c.localIDSet = id, true }
}

// WithPeerIDCheck binds every peer's certificate to its raft server ID, in both directions:
//
//   - dialling, the server's certificate must name the ID the caller expects at that address
//     (raft always knows it; a Call made with an empty ID checks the CA only), or the dial
//     fails with [ErrPeerIdentity];
//   - accepting, the client's certificate must name the ID the dialer stated (its
//     [WithLocalID]), or the connection is refused, with the reason sent to the dialer (whose
//     dial fails with ErrPeerIdentity) and logged at warn level;
//   - every raft RPC arriving on an accepted connection must name, in its header, the ID the
//     connection was authenticated as: a certificate holder speaks only as itself. Another ID
//     gets an ErrPeerIdentity error as the RPC's answer, and raft never sees the RPC.
//
// "Names" means that the ID matches a DNS SAN of the certificate (or an IP SAN, when the ID is
// an IP address), with crypto/x509's host name rules: case-insensitive, and a leading "*."
// wildcard matches one label (so do not issue wildcard certificates to members). It requires
// [WithTLS] and [WithLocalID], and this node's own certificate must name its ID: [NewTCP] fails
// otherwise, rather than start a member every peer would refuse.
//
// Turn it on once every member states its ID (runs a transport with WithLocalID): a member
// that states none is refused by those that check.
func WithPeerIDCheck() Option {
	return func(c *config) { c.peerIDCheck = true }
}

// WithDialTimeout bounds the TCP connect to a peer (default [DefaultDialTimeout]).
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) { c.dialTimeout = d }
}

// WithHandshakeTimeout bounds the TLS handshake and preamble of a new connection, on both
// sides (default [DefaultHandshakeTimeout]).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) { c.handshakeTimeout = d }
}

// WithMaxMessageSize limits a Call request or reply to n bytes (default
// [DefaultMaxMessageSize]). Larger requests fail with [ErrTooLarge] before anything is sent;
// a larger reply is replaced by an ErrTooLarge failure; a peer that announces a larger frame
// loses its connection.
func WithMaxMessageSize(n int) Option {
	return func(c *config) { c.maxMessageSize = n }
}

// WithMaxInboundConns caps the connections the transport has accepted and not yet closed, of
// every kind and in every state, at n (default [DefaultMaxInboundConns]). A connection over the
// cap is closed as soon as it is accepted, and the refusal logged at warn level (at most once a
// second, with a count of those not logged). Connections this transport dialled do not count.
func WithMaxInboundConns(n int) Option {
	return func(c *config) { c.maxInbound = n }
}

// WithMaxHandshakingConns caps the accepted connections that have not finished their TLS
// handshake and preamble at n (default [DefaultMaxHandshakingConns], or the inbound cap if that
// is smaller); n must not exceed the inbound cap. A connection over it is closed as soon as it
// is accepted, like one over [WithMaxInboundConns]. Each handshaking connection is dropped at
// the handshake timeout at the latest, so a flood of clients that never complete one holds at
// most n of the inbound cap: it can delay new connections while it lasts, never the
// established ones.
func WithMaxHandshakingConns(n int) Option {
	return func(c *config) { c.maxHandshaking, c.maxHandshakingSet = n, true }
}

// WithLogger sends the TCP transport's logs (refused connections, failed handshakes, broken
// streams, and those of raft's network layer) to l. nil, the default, discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// validateTCP checks the options NewTCP was given.
func (c *config) validateTCP(bind string) error {
	switch {
	case c.listener != nil && bind != "":
		return invalid("WithListener", "given together with the bind address %q", bind)
	case c.listener == nil && bind == "":
		return invalid("NewTCP", "no bind address and no WithListener")
	case c.dialTimeout <= 0:
		return invalid("WithDialTimeout", "%v", c.dialTimeout)
	case c.handshakeTimeout <= 0:
		return invalid("WithHandshakeTimeout", "%v", c.handshakeTimeout)
	case c.maxMessageSize <= 0 || c.maxMessageSize > maxFrameBody:
		return invalid("WithMaxMessageSize", "%d (allowed 1..%d)", c.maxMessageSize, maxFrameBody)
	case c.maxInbound < 1:
		return invalid("WithMaxInboundConns", "%d (at least 1)", c.maxInbound)
	case c.maxHandshaking < 1 || c.maxHandshaking > c.maxInbound:
		return invalid("WithMaxHandshakingConns", "%d (allowed 1..%d, the inbound cap)", c.maxHandshaking, c.maxInbound)
	case c.localIDSet && (len(c.localID) == 0 || len(c.localID) > maxIDLen):
		return invalid("WithLocalID", "%q: must be 1 to %d bytes", c.localID, maxIDLen)
	case c.peerIDCheck && c.tls == nil:
		return invalid("WithPeerIDCheck", "requires WithTLS")
	case c.peerIDCheck && !c.localIDSet:
		return invalid("WithPeerIDCheck", "requires WithLocalID: the ID this node states to its peers, which its certificate must name")
	}
	if c.advertise != "" {
		if err := validateTCPAddress(string(c.advertise)); err != nil {
			return fmt.Errorf("%w: WithAdvertiseAddr: %w", ErrInvalidOption, err)
		}
	}
	return nil
}
