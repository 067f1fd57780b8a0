package main

import (
	"github.com/kvstore/kvstore/transport"
)

// newTransport builds the peer transport of this member: it listens on
// cfg.listen, tells raft its address is cfg.advertise, and speaks mutual
// TLS with cfg.tlsCert, cfg.tlsKey and cfg.tlsCA when cfg.tls(), checking
// cfg.clusterToken on every connection if the transport supports it. The
// node owns the returned transport from a successful kvstore.Open on.
//
// This is the one place the TCP transport is wired in; until it exists it
// returns errTransportUnavailable and the program exits with status 1.
func newTransport(cfg config) (transport.Transport, error) {
	_ = cfg
	return nil, errTransportUnavailable
}
