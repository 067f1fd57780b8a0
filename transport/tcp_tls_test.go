package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

func TestTLSRaftCluster(t *testing.T) {
	ca := newCA(t, "cluster CA")
	raftClusterOverTCP(t, func(id raft.ServerID) []transport.Option {
		return withIdentity(t, ca, string(id))
	})
}

func TestTLSCall(t *testing.T) {
	ca := newCA(t, "cluster CA")
	a := newTCP(t, withIdentity(t, ca, "a")...)
	b := newTCP(t, withIdentity(t, ca, "b")...)
	serveEcho(a)
	serveEcho(b)
	callEcho(t, a, b) // no ID: the CA alone is checked
	callEcho(t, b, a)
	if reply, err := a.Call(context.Background(), "b", b.LocalAddr(), []byte("x")); err != nil || !strings.HasSuffix(string(reply), ":x") {
		t.Fatalf("Call with the right ID: %q, %v", reply, err)
	}
}

// With the ID check on, a server whose certificate names another ID is refused, for Calls and
// for raft RPCs; without it, the CA is all that counts.
func TestTLSServerIDCheck(t *testing.T) {
	ca := newCA(t, "cluster CA")
	a := newTCP(t, withIdentity(t, ca, "n1")...)
	b := newTCP(t, withFilesTLS(t, ca, "n3")) // says it is n3
	serveEcho(b)
	respondAllTCP(t, b)

	_, err := a.Call(context.Background(), "n2", b.LocalAddr(), []byte("x"))
	if !errors.Is(err, transport.ErrPeerIdentity) || !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "n2") {
		t.Fatalf("Call expecting n2: err = %v, want ErrPeerIdentity and ErrUnreachable naming n2", err)
	}
	var rv raft.RequestVoteResponse
	if err := a.RequestVote("n2", b.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &rv); !errors.Is(err, transport.ErrPeerIdentity) {
		t.Fatalf("RequestVote expecting n2: err = %v, want ErrPeerIdentity", err)
	}
	if err := a.RequestVote("n3", b.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &rv); err != nil || !rv.Granted {
		t.Fatalf("RequestVote expecting n3: %+v, %v", rv, err)
	}
	if _, err := a.Call(context.Background(), "n3", b.LocalAddr(), []byte("x")); err != nil {
		t.Fatalf("Call expecting n3: %v", err)
	}
	callEcho(t, a, b) // no ID given: the CA only

	noCheck := newTCP(t, withFilesTLS(t, ca, "n4"))
	if _, err := noCheck.Call(context.Background(), "n2", b.LocalAddr(), []byte("x")); err != nil {
		t.Fatalf("without WithPeerIDCheck: %v", err)
	}
}

// A certificate from another CA is refused in both directions.
func TestTLSForeignCA(t *testing.T) {
	ca, other := newCA(t, "cluster CA"), newCA(t, "another CA")
	a := newTCP(t, withFilesTLS(t, ca, "a"))
	serveEcho(a)
	intruder := newTCP(t, withFilesTLS(t, other, "intruder"))
	serveEcho(intruder)

	// The intruder calls a: a refuses its client certificate.
	_, err := intruder.Call(context.Background(), "", a.LocalAddr(), []byte("x"))
	if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("intruder → a: err = %v, want ErrUnreachable from the TLS handshake", err)
	}
	var rv raft.RequestVoteResponse
	if err := intruder.RequestVote("a", a.LocalAddr(), &raft.RequestVoteRequest{}, &rv); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("intruder → a, raft: err = %v, want ErrUnreachable", err)
	}
	// a calls the intruder: a refuses its server certificate.
	if _, err := a.Call(context.Background(), "", intruder.LocalAddr(), []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("a → intruder: err = %v, want ErrUnreachable", err)
	}
	// A raw TLS client with the other CA's certificate gets no answer to its preamble.
	cfg, err := other.TLSConfig("raw")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", string(a.LocalAddr()), cfg)
	if err == nil { // TLS 1.3: the client finishes first; the refusal arrives as an alert
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = conn.Write([]byte("KVT\x01\x02"))
		if _, err := io.ReadFull(conn, make([]byte, 1)); err == nil {
			t.Fatal("a foreign certificate got an answer to its preamble")
		}
	}
}

// A plaintext client is refused by a TLS transport, at once: its preamble is not a TLS
// handshake.
func TestTLSRefusesPlaintext(t *testing.T) {
	ca := newCA(t, "cluster CA")
	var logs syncBuffer
	secure := newTCP(t, withFilesTLS(t, ca, "secure"), transport.WithHandshakeTimeout(time.Minute),
		transport.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	serveEcho(secure)
	plain := newTCP(t)
	if _, err := plain.Call(context.Background(), "", secure.LocalAddr(), []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("plaintext Call: err = %v, want ErrUnreachable", err)
	}
	var rv raft.RequestVoteResponse
	if err := plain.RequestVote("secure", secure.LocalAddr(), &raft.RequestVoteRequest{}, &rv); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("plaintext RequestVote: err = %v, want ErrUnreachable", err)
	}

	conn, err := net.Dial("tcp", string(secure.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = conn.Write([]byte("KVT\x01\x02"))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("reading until the server closes: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("connection closed after %v, want at once (well before the 1 min handshake timeout)", d)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "refused connection") || !strings.Contains(got, "tls") {
		t.Fatalf("the refusal was not logged as a TLS warning:\n%s", got)
	}
	// So is a TLS client against a plaintext transport.
	if _, err := secure.Call(context.Background(), "", plain.LocalAddr(), []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("TLS Call to a plaintext transport: err = %v, want ErrUnreachable", err)
	}
}

// A client that connects and sends nothing is dropped after the handshake timeout, with and
// without TLS; so is one that stops in the middle of its preamble.
func TestTCPSilentClientDropped(t *testing.T) {
	ca := newCA(t, "cluster CA")
	for _, tc := range []struct {
		name string
		opts []transport.Option
		send string
	}{
		{"plain/silent", nil, ""},
		{"plain/half-preamble", nil, "KV"},
		{"tls/silent", []transport.Option{withFilesTLS(t, ca, "n1")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const timeout = 200 * time.Millisecond
			tr := newTCP(t, append(tc.opts, transport.WithHandshakeTimeout(timeout))...)
			start := time.Now() // before the server can accept, so before its deadline starts
			conn, err := net.Dial("tcp", string(tr.LocalAddr()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = conn.Write([]byte(tc.send))
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadAll(conn); err != nil {
				t.Fatalf("reading until the server closes: %v", err)
			}
			if d := time.Since(start); d < timeout || d > 10*time.Second {
				t.Fatalf("dropped after %v, want the %v handshake timeout", d, timeout)
			}
		})
	}
}

// A garbage preamble is refused with an answer and the connection closed.
func TestTCPBadPreamble(t *testing.T) {
	tr := newTCP(t)
	conn, err := net.Dial("tcp", string(tr.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = conn.Write([]byte("GET /"))
	got, err := io.ReadAll(conn)
	if err != nil || len(got) != 1 || got[0] == 0 {
		t.Fatalf("answer %q, %v; want one refusal byte, then EOF", got, err)
	}
}

// Replacing the certificate files takes effect for new connections without a restart.
func TestTLSReloadsCertificate(t *testing.T) {
	ca := newCA(t, "cluster CA")
	dir := t.TempDir()
	files, err := ca.WriteFiles(dir, "node", "old-name")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := transport.LoadTLSConfig(files.Cert, files.Key, files.CA)
	if err != nil {
		t.Fatal(err)
	}
	b := newTCP(t, transport.WithTLS(cfg))
	serveEcho(b)
	a := newTCP(t, withIdentity(t, ca, "a")...)
	if _, err := a.Call(context.Background(), "new-name", b.LocalAddr(), nil); !errors.Is(err, transport.ErrPeerIdentity) {
		t.Fatalf("before the rotation: err = %v, want ErrPeerIdentity", err)
	}
	if _, err := ca.WriteFiles(dir, "node", "new-name"); err != nil {
		t.Fatal(err)
	}
	// The files are looked at no more than once a second.
	pollUntil(t, 10*time.Second, "the new certificate to be served", func() bool {
		_, err := a.Call(context.Background(), "new-name", b.LocalAddr(), nil)
		return err == nil
	})

}

func TestTCPOptionsValidated(t *testing.T) {
	ca := newCA(t, "cluster CA")
	good, err := ca.TLSConfig("n1")
	if err != nil {
		t.Fatal(err)
	}
	noClientCAs := good.Clone()
	noClientCAs.ClientCAs = nil
	noVerify := good.Clone()
	noVerify.VerifyConnection = nil
	for _, tc := range []struct {
		name   string
		bind   string
		opts   []transport.Option
		option string
	}{
		{"no address", "", nil, "NewTCP"},
		{"check without TLS", "127.0.0.1:0", []transport.Option{transport.WithLocalID("n1"), transport.WithPeerIDCheck()}, "WithPeerIDCheck"},
		{"check without local ID", "127.0.0.1:0", []transport.Option{transport.WithTLS(good), transport.WithPeerIDCheck()}, "WithPeerIDCheck"},
		{"empty local ID", "127.0.0.1:0", []transport.Option{transport.WithLocalID("")}, "WithLocalID"},
		{"local ID too long", "127.0.0.1:0", []transport.Option{transport.WithLocalID(raft.ServerID(strings.Repeat("n", 256)))}, "WithLocalID"},
		{"own certificate names another ID", "127.0.0.1:0", []transport.Option{transport.WithTLS(good), transport.WithLocalID("n3"), transport.WithPeerIDCheck()}, "WithLocalID"},
		{"no inbound connections", "127.0.0.1:0", []transport.Option{transport.WithMaxInboundConns(0)}, "WithMaxInboundConns"},
		{"no handshaking connections", "127.0.0.1:0", []transport.Option{transport.WithMaxHandshakingConns(0)}, "WithMaxHandshakingConns"},
		{"more handshaking than inbound", "127.0.0.1:0", []transport.Option{transport.WithMaxInboundConns(8), transport.WithMaxHandshakingConns(9)}, "WithMaxHandshakingConns"},
		{"TLS without client CAs", "127.0.0.1:0", []transport.Option{transport.WithTLS(noClientCAs)}, "WithTLS"},
		{"TLS verifying nothing", "127.0.0.1:0", []transport.Option{transport.WithTLS(noVerify)}, "WithTLS"},
		{"zero dial timeout", "127.0.0.1:0", []transport.Option{transport.WithDialTimeout(0)}, "WithDialTimeout"},
		{"zero handshake timeout", "127.0.0.1:0", []transport.Option{transport.WithHandshakeTimeout(-1)}, "WithHandshakeTimeout"},
		{"zero message size", "127.0.0.1:0", []transport.Option{transport.WithMaxMessageSize(0)}, "WithMaxMessageSize"},
		{"bad advertise address", "127.0.0.1:0", []transport.Option{transport.WithAdvertiseAddr("no-port")}, "WithAdvertiseAddr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := transport.NewTCP(tc.bind, tc.opts...)
			if err == nil {
				tr.Close()
				t.Fatal("NewTCP succeeded")
			}
			if !errors.Is(err, transport.ErrInvalidOption) || !strings.Contains(err.Error(), tc.option) {
				t.Fatalf("err = %v, want ErrInvalidOption naming %s", err, tc.option)
			}
		})
	}

	// A listener together with a bind address is refused, and the listener closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.NewTCP("127.0.0.1:0", transport.WithListener(ln)); !errors.Is(err, transport.ErrInvalidOption) {
		t.Fatalf("bind and listener: err = %v, want ErrInvalidOption", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener not closed after a refused NewTCP: %v", err)
	}

	// Listening on all interfaces without saying where peers should dial.
	if _, err := transport.NewTCP(":0"); !errors.Is(err, transport.ErrInvalidOption) || !strings.Contains(err.Error(), "WithAdvertiseAddr") {
		t.Fatalf("all interfaces, no advertise address: err = %v, want ErrInvalidOption naming WithAdvertiseAddr", err)
	}

	// A bind address and an advertise address.
	tr, err := transport.NewTCP("127.0.0.1:0", transport.WithAdvertiseAddr("node1.example:7000"))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.LocalAddr() != "node1.example:7000" || !strings.HasPrefix(tr.ListenAddr().String(), "127.0.0.1:") {
		t.Fatalf("LocalAddr %s, ListenAddr %s", tr.LocalAddr(), tr.ListenAddr())
	}
}
