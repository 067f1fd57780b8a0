package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// AddressValidator is implemented by a [Transport] that can tell whether a peer address has the
// form of one it could dial. Both transports of this package implement it; a node calls it on
// every address it is given for a peer (bootstrap members, members to add, members to join
// through) before recording or dialling it, so that a typo is refused where it was made
// instead of leaving a member nobody can reach.
type AddressValidator interface {
	// ValidateAddress returns nil if addr is well formed for this transport, and otherwise an
	// error wrapping [ErrInvalidAddress] that names addr and says what is wrong. It neither
	// dials nor resolves: a well-formed address may still be unreachable. It is safe for
	// concurrent use, and it works on a closed transport too.
	ValidateAddress(addr string) error
}

var (
	_ AddressValidator = (*TCPTransport)(nil)
	_ AddressValidator = (*MemTransport)(nil)
)

// ValidateAddress accepts "host:port" where port is a number from 1 to 65535 and host is an IP
// address other than an unspecified one (0.0.0.0, ::, which name every interface of the
// listener rather than one a peer can dial) or a DNS name (letters, digits, '-' and '_',
// dot-separated labels of 1 to 63 characters). Port 0, which a listener may be given to pick a
// free port, is refused: it is never the port a peer must dial.
func (t *TCPTransport) ValidateAddress(addr string) error { return validateTCPAddress(addr) }

// ValidateAddress accepts any non-empty name: on a Network an address is a name, and one that
// no transport has joined is merely unreachable.
func (t *MemTransport) ValidateAddress(addr string) error {
	if addr == "" {
		return invalidAddress(addr, "empty name")
	}
	return nil
}

// validateTCPAddress is TCPTransport.ValidateAddress, which NewTCP also applies to
// WithAdvertiseAddr.
func validateTCPAddress(addr string) error {
	if addr == "" {
		return invalidAddress(addr, "empty (want host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		why := err.Error()
		if errors.As(err, &ae) {
			why = ae.Err
		}
		return invalidAddress(addr, why+" (want host:port)")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return invalidAddress(addr, fmt.Sprintf("port %q is not a number from 1 to 65535", port))
	}
	if host == "" {
		return invalidAddress(addr, "no host: peers need a host to dial")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsUnspecified() {
			return invalidAddress(addr, fmt.Sprintf("%s stands for every local interface, not an address peers can dial", host))
		}
		return nil
	}
	if !isDNSName(host) {
		return invalidAddress(addr, fmt.Sprintf("host %q is neither an IP address nor a DNS name", host))
	}
	return nil
}

// isDNSName reports whether host is made of dot-separated labels of 1 to 63 letters, digits,
// '-' and '_' (which some internal zones use), 253 bytes at most, with an optional final dot.
func isDNSName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			switch {
			case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_':
			default:
				return false
			}
		}
	}
	return true
}

// invalidAddress builds an error wrapping ErrInvalidAddress that names addr and says why.
func invalidAddress(addr, why string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidAddress, addr, why)
}
