package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// newTransport builds the peer transport of this member: TCP on
// cfg.listen, advertised to the other members as cfg.advertise, with
// mutual TLS 1.3 from cfg.tlsCert, cfg.tlsKey and cfg.tlsCA when cfg.tls()
// (the files are re-read when they change, so certificates rotate without a
// restart). The member states its ID to every peer it dials; with TLS, unless
// --peer-identity-check=false, every certificate must name its member's ID,
// both ways, and this member's own must name cfg.id or newTransport fails.
// Refused connections and failed handshakes are logged. The node owns the
// returned transport from a successful kvstore.Open on.
func newTransport(cfg config, logger *slog.Logger) (transport.Transport, error) {
	opts := []transport.Option{
		transport.WithAdvertiseAddr(cfg.advertise),
		transport.WithLocalID(raft.ServerID(cfg.id)),
		transport.WithLogger(logger.With("component", "transport")),
	}
	if cfg.tls() {
		tc, err := transport.LoadTLSConfig(cfg.tlsCert, cfg.tlsKey, cfg.tlsCA)
		if err != nil {
			return nil, err
		}
		opts = append(opts, transport.WithTLS(tc))
	}
	if cfg.identityChecked() {
		opts = append(opts, transport.WithPeerIDCheck())
	}
	if cfg.listenFD <= 0 {
		return transport.NewTCP(cfg.listen, opts...)
	}
	ln, err := inheritedListener(cfg.listenFD, "--listen-fd")
	if err != nil {
		return nil, err
	}
	return transport.NewTCP("", append(opts, transport.WithListener(ln))...)
}

// inheritedListener returns the listening socket at file descriptor fd.
func inheritedListener(fd int, flag string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), flag)
	if f == nil {
		return nil, fmt.Errorf("%s %d: not an open file descriptor", flag, fd)
	}
	defer f.Close() // FileListener holds its own duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("%s %d: %w", flag, fd, err)
	}
	return ln, nil
}
