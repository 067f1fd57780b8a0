package transport

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/kvstore/kvstore/internal/testcerts"
)

// The reloader switches to new files once they load, and keeps the last good set while they
// do not (a rotation half done).
func TestTLSFilesReload(t *testing.T) {
	ca, err := testcerts.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := ca.WriteFiles(dir, "node", "one")
	if err != nil {
		t.Fatal(err)
	}
	r := &tlsFiles{paths: [3]string{f.Cert, f.Key, f.CA}}
	if err := r.load(time.Now()); err != nil {
		t.Fatal(err)
	}
	name := func() string {
		cert, _ := r.current()
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.DNSNames[0]
	}
	if got := name(); got != "one" {
		t.Fatalf("serving %q, want one", got)
	}

	// Half a rotation: a new certificate with the old key does not load.
	certPEM, keyPEM, err := ca.Issue("two")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "one" {
		t.Fatalf("with a mismatched key on disk: serving %q, want the last good one", got)
	}
	if err := os.WriteFile(f.Key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "two" {
		t.Fatalf("after the rotation: serving %q, want two", got)
	}

	// A new CA bundle (old and new CA) is picked up for verifying peers.
	ca2, err := testcerts.NewCA("ca2")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.CA, append(bytes.Clone(ca.CertPEM), ca2.CertPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	peerPEM, peerKey, err := ca2.Issue("peer")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := tls.X509KeyPair(peerPEM, peerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(peer.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := r.verifyServer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}); err != nil {
		t.Fatalf("a server signed by the CA added to the bundle: %v", err)
	}
	other, err := testcerts.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	strangerPEM, strangerKey, err := other.Issue("stranger")
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := tls.X509KeyPair(strangerPEM, strangerKey)
	strangerLeaf, _ := x509.ParseCertificate(stranger.Certificate[0])
	if err := r.verifyServer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{strangerLeaf}}); err == nil {
		t.Fatal("a server signed by an unknown CA was accepted")
	}
}
