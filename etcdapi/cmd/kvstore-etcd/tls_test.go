package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvstore/kvstore/etcdapi/internal/etcdctltest"
)

// testPKI is a CA and one certificate it signed for 127.0.0.1 and
// localhost, good for serving and for clients, in PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	for file, block := range map[string]*pem.Block{
		p.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		p.certFile: {Type: "CERTIFICATE", Bytes: leafDER},
		p.keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// httpClient returns an HTTP client that trusts the CA and presents the
// certificate.
func (p testPKI) httpClient(t *testing.T) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pemCA, _ := os.ReadFile(p.caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
}

// A cluster with https:// client and peer URLs: peers speak mutual TLS
// over kvstore's transport, clients must present a certificate
// (--client-cert-auth), and etcdctl with the certificates works while
// etcdctl without one is refused.
func TestTLSClusterOfProcesses(t *testing.T) {
	bin := buildServer(t)
	ctl := etcdctl{t: t, bin: etcdctltest.Build(t)}
	pki := newTestPKI(t)
	var ms []*member
	for _, name := range []string{"tls1", "tls2", "tls3"} {
		m := newMember(t, bin, name)
		m.clientURL = strings.Replace(m.clientURL, "http://", "https://", 1)
		m.peerURL = strings.Replace(m.peerURL, "http://", "https://", 1)
		m.extraFlags = []string{
			"--cert-file=" + pki.certFile, "--key-file=" + pki.keyFile, "--trusted-ca-file=" + pki.caFile, "--client-cert-auth",
			"--peer-cert-file=" + pki.certFile, "--peer-key-file=" + pki.keyFile, "--peer-trusted-ca-file=" + pki.caFile, "--peer-client-cert-auth",
		}
		m.httpClient = pki.httpClient(t)
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.start("--initial-cluster=" + initialClusterFlag(ms...))
	}
	for _, m := range ms {
		m.waitHealthy()
	}
	secure := []string{"--cacert=" + pki.caFile, "--cert=" + pki.certFile, "--key=" + pki.keyFile}
	ctl.must(endpointsOf(ms...), append(secure, "put", "k", "over-tls")...)
	if out := ctl.must(endpointsOf(ms[2]), append(secure, "get", "k", "--print-value-only")...); out != "over-tls\n" {
		t.Fatalf("get over TLS: %q", out)
	}
	waitFor(t, "every member listed with its https URLs", func() bool {
		return listsAll(ctl.members(endpointsOf(ms[0]), secure...), ms)
	})
	if out, err := ctl.run(endpointsOf(ms[0]), "--cacert="+pki.caFile, "--command-timeout=3s", "get", "k"); err == nil {
		t.Errorf("a client without a certificate was served: %s", out)
	}
	for _, m := range ms {
		if err := m.stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s after SIGTERM: %v", m.name, err)
		}
	}
}
