package etcdapi

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// etcd lists a member's peer URLs ("http://10.0.0.1:2380"); kvstore records
// a member's peer address ("10.0.0.1:2380", what its transport dials). A
// Server given WithPeerURLScheme converts between the two: MemberList
// prefixes each address with the scheme, MemberAdd and MemberUpdate take
// one URL of that scheme and record its host and port. Without it, the
// recorded addresses are listed as they are (an in-memory transport's
// names are no URLs), and MemberAdd and MemberUpdate record the host and
// port of an http or https URL.

// WithPeerURLScheme gives the scheme of the cluster's peer URLs, "http"
// (plaintext peer traffic) or "https" (TLS), as its members were started
// with (etcd's --initial-advertise-peer-urls). MemberList reports every
// member's peer URL with it; MemberAdd and MemberUpdate refuse URLs of
// another scheme.
func WithPeerURLScheme(scheme string) Option {
	return func(s *Server) { s.peerScheme = scheme }
}

// peerURL returns the peer URL etcd lists for a member recorded at addr.
func (s *Server) peerURL(addr string) string {
	if s.peerScheme == "" {
		return addr
	}
	return s.peerScheme + "://" + addr
}

// peerAddress returns the address to record for a member whose peer URLs
// are urls: the host and port of the one URL (kvstore records one address
// per member). Anything else is etcd's ErrGRPCMemberBadURLs, or
// InvalidArgument for several URLs.
func (s *Server) peerAddress(urls []string) (string, error) {
	if len(urls) != 1 {
		return "", status.Error(codes.InvalidArgument, fmt.Sprintf("etcdserver: kvstore records exactly one peer URL per member, not %d", len(urls)))
	}
	addr, err := ParsePeerURL(urls[0], s.peerScheme)
	if err != nil {
		return "", rpctypes.ErrGRPCMemberBadURLs
	}
	return addr, nil
}

// ParsePeerURL returns the host:port of the peer URL raw, which must be
// http:// or https:// (of scheme, if scheme is not empty) with a host, an
// explicit port and nothing else.
func ParsePeerURL(raw, scheme string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("peer URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("peer URL %q: scheme must be http or https", raw)
	}
	if scheme != "" && u.Scheme != scheme {
		return "", fmt.Errorf("peer URL %q: the cluster's peer URLs are %s://", raw, scheme)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("peer URL %q: only a scheme, a host and a port", raw)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" || strings.ContainsAny(host, "/ ") {
		return "", fmt.Errorf("peer URL %q: needs a host and a port", raw)
	}
	return u.Host, nil
}
