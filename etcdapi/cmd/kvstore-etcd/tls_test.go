package main

import (
	"crypto/tls"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvstore/kvstore/etcdapi/internal/etcdctltest"
	"github.com/kvstore/kvstore/internal/testcerts"
)

// testPKI is a CA's certificate and one it issued for 127.0.0.1 and
// localhost, good for serving and for clients, in PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	ca                        *testcerts.CA
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	ca, err := testcerts.NewCA("kvstore-etcd test CA")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteFiles(t.TempDir(), "member", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{caFile: f.CA, certFile: f.Cert, keyFile: f.Key, ca: ca}
}

// httpClient returns an HTTP client that trusts the CA and presents the
// certificate.
func (p testPKI) httpClient(t *testing.T) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{cert}}}}
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

	// With auth enabled, --client-cert-auth makes the certificate's common
	// name the user of a request without a token, as etcd's.
	for _, args := range [][]string{
		{"user", "add", "root", "--new-user-password=rootpw"},
		{"role", "add", "root"},
		{"user", "grant-role", "root", "root"},
		{"user", "add", "127.0.0.1", "--no-password"}, // the certificate's common name
		{"role", "add", "k-reader"},
		{"role", "grant-permission", "k-reader", "read", "k"},
		{"user", "grant-role", "127.0.0.1", "k-reader"},
		{"auth", "enable"},
	} {
		ctl.must(endpointsOf(ms[0]), append(secure, args...)...)
	}
	if out := ctl.must(endpointsOf(ms[1]), append(secure, "get", "k", "--print-value-only")...); out != "over-tls\n" {
		t.Fatalf("get as the certificate's user: %q", out)
	}
	if out, err := ctl.run(endpointsOf(ms[1]), append(secure, "--command-timeout=3s", "put", "k", "denied")...); err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("put as the certificate's user, who may only read: %s, %v", out, err)
	}
	for _, m := range ms {
		if err := m.stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s after SIGTERM: %v", m.name, err)
		}
	}
}
