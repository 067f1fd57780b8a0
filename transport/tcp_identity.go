package transport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/hashicorp/raft"
)

// Peer identity over TLS ([WithPeerIDCheck]): a member's certificate names its raft server ID
// as a DNS SAN, and the check binds the two wherever a connection crosses:
//
//   - the dialer knows the ID it expects at an address and verifies the server's certificate
//     after the TLS handshake (checkPeerID);
//   - the dialer states its own ID in the preamble, and the acceptor verifies the client's
//     certificate against it (checkStatedID), answering a refusal with its reason;
//   - the acceptor remembers the ID a raft connection was authenticated as, and refuses every
//     RPC on it whose header names another (checkRPCSpeaker, tcp_raft.go).
//
// The IDs are compared with crypto/x509's host name matching, which is what DNS SANs are for.
// Identity is the raft server ID and not an address: members are dialled at addresses that
// change (NAT, DHCP, a moved machine), and raft routes by ID.

// maxIDLen is the longest ID a preamble carries (one length byte).
const maxIDLen = 255

// checkPeerID verifies that a peer's (chain-verified) certificate names id, as a DNS SAN or,
// for an ID that is an IP address, an IP SAN.
func checkPeerID(cs tls.ConnectionState, id raft.ServerID) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: expected %q: no certificate", ErrPeerIdentity, id)
	}
	if err := cs.PeerCertificates[0].VerifyHostname(string(id)); err != nil {
		return fmt.Errorf("%w: expected %q: %w", ErrPeerIdentity, id, err)
	}
	return nil
}

// checkStatedID is the acceptor's check of the ID a dialer stated in its preamble against the
// client certificate it presented. The error's text after the sentinel is the reason sent to
// the dialer, so it says nothing the dialer does not know already.
func checkStatedID(cs tls.ConnectionState, stated raft.ServerID) error {
	if stated == "" {
		return fmt.Errorf("%w: the dialer stated no server ID (it has no WithLocalID) and this member checks peer identity", ErrPeerIdentity)
	}
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the dialer stated %q but presented no certificate", ErrPeerIdentity, stated)
	}
	cert := cs.PeerCertificates[0]
	if cert.VerifyHostname(string(stated)) != nil {
		return fmt.Errorf("%w: the dialer stated %q but its certificate names %s", ErrPeerIdentity, stated, certNames(cert))
	}
	return nil
}

// checkOwnCertificate makes NewTCP fail when this node's own certificate (every one the TLS
// config yields without a handshake: Certificates, GetCertificate, GetClientCertificate) does
// not name its ID: with identity checking on, every peer would refuse it. A config that only
// picks certificates per handshake (GetConfigForClient alone) is not checked here; peers will
// refuse it at the first connection if it is wrong.
func checkOwnCertificate(cfg *tls.Config, id raft.ServerID) error {
	var certs []*tls.Certificate
	if len(cfg.Certificates) > 0 {
		certs = append(certs, &cfg.Certificates[0])
	}
	if cfg.GetCertificate != nil {
		if c, err := cfg.GetCertificate(&tls.ClientHelloInfo{}); err == nil && c != nil {
			certs = append(certs, c)
		}
	}
	if cfg.GetClientCertificate != nil {
		if c, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{}); err == nil && c != nil {
			certs = append(certs, c)
		}
	}
	for _, c := range certs {
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			var err error
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return invalid("WithTLS", "this node's certificate does not parse: %v", err)
			}
		}
		if leaf == nil {
			continue
		}
		if leaf.VerifyHostname(string(id)) != nil {
			return invalid("WithLocalID", "this node's certificate names %s, not its ID %q: every peer checking identity (WithPeerIDCheck) would refuse it", certNames(leaf), id)
		}
	}
	return nil
}

// checkRPCSpeaker verifies that a raft RPC arriving on a connection authenticated as peer
// names peer in its header. raft v1.7.3 fills the header (ID and address) in every request.
func checkRPCSpeaker(cmd any, peer raft.ServerID) error {
	h, ok := cmd.(raft.WithRPCHeader)
	if !ok {
		return fmt.Errorf("%w: %s without an RPC header on a connection authenticated as %q", ErrPeerIdentity, rpcName(cmd), peer)
	}
	if id := raft.ServerID(h.GetRPCHeader().ID); id != peer {
		return fmt.Errorf("%w: %s from server %q on a connection authenticated as %q", ErrPeerIdentity, rpcName(cmd), id, peer)
	}
	return nil
}

// rpcName names a raft request for errors and logs.
func rpcName(cmd any) string {
	switch cmd.(type) {
	case *raft.AppendEntriesRequest:
		return "AppendEntries"
	case *raft.RequestVoteRequest:
		return "RequestVote"
	case *raft.RequestPreVoteRequest:
		return "RequestPreVote"
	case *raft.InstallSnapshotRequest:
		return "InstallSnapshot"
	case *raft.TimeoutNowRequest:
		return "TimeoutNow"
	}
	return fmt.Sprintf("%T", cmd)
}

// emptyResponse returns the zero response matching a raft request, the body of a refusal.
func emptyResponse(cmd any) any {
	switch cmd.(type) {
	case *raft.AppendEntriesRequest:
		return &raft.AppendEntriesResponse{}
	case *raft.RequestVoteRequest:
		return &raft.RequestVoteResponse{}
	case *raft.RequestPreVoteRequest:
		return &raft.RequestPreVoteResponse{}
	case *raft.InstallSnapshotRequest:
		return &raft.InstallSnapshotResponse{}
	case *raft.TimeoutNowRequest:
		return &raft.TimeoutNowResponse{}
	}
	return nil
}

// certNames lists the names a certificate could be matched by, for messages: its DNS and IP
// SANs, at most a few hundred bytes of them.
func certNames(cert *x509.Certificate) string {
	var names []string
	for _, n := range cert.DNSNames {
		names = append(names, "DNS:"+n)
	}
	for _, ip := range cert.IPAddresses {
		names = append(names, "IP:"+ip.String())
	}
	if len(names) == 0 {
		return "no DNS or IP SAN"
	}
	s := strings.Join(names, ", ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return "[" + s + "]"
}
