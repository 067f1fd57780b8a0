package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// checkingMember is a transport that checks peer identity, answers Calls and raft RPCs
// favourably (counting both) and keeps its log.
type checkingMember struct {
	tr    *transport.TCPTransport
	echo  *echo
	rpcs  *responder
	beats atomic.Int64 // heartbeats through the fast path
	logs  *syncBuffer
}

func newCheckingMember(t *testing.T, opts ...transport.Option) *checkingMember {
	t.Helper()
	m := &checkingMember{logs: &syncBuffer{}}
	m.tr = newTCP(t, append(opts, transport.WithLogger(slog.New(slog.NewTextHandler(m.logs, nil))))...)
	m.echo = serveEcho(m.tr)
	m.rpcs = respondAllTCP(t, m.tr)
	m.tr.SetHeartbeatHandler(func(rpc raft.RPC) {
		m.beats.Add(1)
		rpc.Respond(favourable(rpc))
	})
	return m
}

// untouched fails the test if m served anything.
func (m *checkingMember) untouched(t *testing.T) {
	t.Helper()
	if n, r, b := m.echo.n.Load(), m.rpcs.Load(), m.beats.Load(); n != 0 || r != 0 || b != 0 {
		t.Fatalf("the member served %d Calls, %d raft RPCs and %d heartbeats; want none", n, r, b)
	}
}

// refusedIdentity fails the test unless err is ErrPeerIdentity with ErrUnreachable and its text
// holds every one of want.
func refusedIdentity(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, transport.ErrPeerIdentity) || !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("%s: err = %v, want ErrPeerIdentity and ErrUnreachable", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: err = %v, want it to mention %q", what, err, w)
		}
	}
}

// header returns the RPC header raft would send from id.
func header(id raft.ServerID, addr raft.ServerAddress) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(addr)}
}

// A peer holding a CA-signed certificate that names n9 and claiming to be n3 is refused by a
// member checking identity, for Calls and for raft RPCs; the refusal reaches the dialer with
// its reason and is logged by the member; nothing is served.
func TestPeerIDCheckRefusesCertificateOfAnotherName(t *testing.T) {
	ca := newCA(t, "cluster CA")
	n2 := newCheckingMember(t, withIdentity(t, ca, "n2")...)
	// The impostor cannot check identity itself (its own certificate does not name n3), but it
	// states n3 all the same.
	impostor := newTCP(t, withFilesTLS(t, ca, "n9"), transport.WithLocalID("n3"))

	_, err := impostor.Call(context.Background(), "n2", n2.tr.LocalAddr(), []byte("x"))
	refusedIdentity(t, "Call from n9's certificate claiming n3", err, "n3", "n9", "refused by the peer")
	var rv raft.RequestVoteResponse
	err = impostor.RequestVote("n2", n2.tr.LocalAddr(), &raft.RequestVoteRequest{RPCHeader: header("n3", impostor.LocalAddr()), Term: 1}, &rv)
	refusedIdentity(t, "RequestVote from n9's certificate claiming n3", err, "n3", "n9")
	n2.untouched(t)
	if logs := n2.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "refused connection") || !strings.Contains(logs, `stated \"n3\"`) {
		t.Fatalf("the member did not log the refusal at warn level:\n%s", logs)
	}

	// A dialer that states no ID is refused too: the member cannot tell whom it speaks to.
	anonymous := newTCP(t, withFilesTLS(t, ca, "n3"))
	_, err = anonymous.Call(context.Background(), "n2", n2.tr.LocalAddr(), []byte("x"))
	refusedIdentity(t, "Call stating no ID", err, "stated no server ID")
	n2.untouched(t)
}

// n1's own certificate, in the hands of a process claiming to be n3, is refused both ways: as
// a client by the member it dials, and as a server by a member that dials n3 and finds it.
// The real n1 and n2 keep talking.
func TestPeerIDCheckRefusesAnotherMembersCertificate(t *testing.T) {
	ca := newCA(t, "cluster CA")
	n1Files := certFiles(t, ca, "n1")
	n1TLS, err := transport.LoadTLSConfig(n1Files.Cert, n1Files.Key, n1Files.CA)
	if err != nil {
		t.Fatal(err)
	}
	n1 := newCheckingMember(t, transport.WithTLS(n1TLS), transport.WithLocalID("n1"), transport.WithPeerIDCheck())
	n2 := newCheckingMember(t, withIdentity(t, ca, "n2")...)
	stolen, err := transport.LoadTLSConfig(n1Files.Cert, n1Files.Key, n1Files.CA) // the very same files
	if err != nil {
		t.Fatal(err)
	}
	impostor := newCheckingMember(t, transport.WithTLS(stolen), transport.WithLocalID("n3"))

	// As a client.
	_, err = impostor.tr.Call(context.Background(), "n2", n2.tr.LocalAddr(), []byte("x"))
	refusedIdentity(t, "Call from n1's certificate claiming n3", err, "n3", "n1")
	var ae raft.AppendEntriesResponse
	err = impostor.tr.AppendEntries("n2", n2.tr.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: header("n3", impostor.tr.LocalAddr()), Term: 5}, &ae)
	refusedIdentity(t, "AppendEntries from n1's certificate claiming n3", err, "n3", "n1")
	n2.untouched(t)

	// As a server: n2 dials n3's address and finds n1's certificate there.
	_, err = n2.tr.Call(context.Background(), "n3", impostor.tr.LocalAddr(), []byte("x"))
	refusedIdentity(t, "Call to n3 answered by n1's certificate", err, "n3")
	var rv raft.RequestVoteResponse
	err = n2.tr.RequestVote("n3", impostor.tr.LocalAddr(), &raft.RequestVoteRequest{RPCHeader: header("n2", n2.tr.LocalAddr()), Term: 1}, &rv)
	refusedIdentity(t, "RequestVote to n3 answered by n1's certificate", err, "n3")
	impostor.untouched(t)

	// The real members are unaffected.
	if _, err := n1.tr.Call(context.Background(), "n2", n2.tr.LocalAddr(), []byte("x")); err != nil {
		t.Fatalf("n1 → n2: %v", err)
	}
	if _, err := n2.tr.Call(context.Background(), "n1", n1.tr.LocalAddr(), []byte("x")); err != nil {
		t.Fatalf("n2 → n1: %v", err)
	}
	if err := n1.tr.RequestVote("n2", n2.tr.LocalAddr(), &raft.RequestVoteRequest{RPCHeader: header("n1", n1.tr.LocalAddr()), Term: 2}, &rv); err != nil || !rv.Granted {
		t.Fatalf("n1 → n2, RequestVote: %+v, %v", rv, err)
	}
}

// A peer authenticated as n9 may send raft RPCs only as n9: every kind of RPC whose header
// names n3 gets an ErrPeerIdentity answer, and neither the Consumer nor the heartbeat handler
// sees it; the same RPCs naming n9 are delivered. The first refusal is logged at warn level.
func TestPeerIDCheckRefusesRPCsSpeakingForAnother(t *testing.T) {
	ca := newCA(t, "cluster CA")
	n2 := newCheckingMember(t, withIdentity(t, ca, "n2")...)
	n9 := newTCP(t, withIdentity(t, ca, "n9")...)
	snapshot := bytes.Repeat([]byte("x"), 1<<20) // more than socket buffers hold

	send := func(as raft.ServerID) map[string]error {
		h := header(as, n9.LocalAddr())
		var ae raft.AppendEntriesResponse
		var rv raft.RequestVoteResponse
		var pv raft.RequestPreVoteResponse
		var is raft.InstallSnapshotResponse
		var tn raft.TimeoutNowResponse
		return map[string]error{
			"AppendEntries":  n9.AppendEntries("n2", n2.tr.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: h, Term: 3, PrevLogEntry: 1, PrevLogTerm: 1}, &ae),
			"heartbeat":      n9.AppendEntries("n2", n2.tr.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: h, Term: 3}, &ae),
			"RequestVote":    n9.RequestVote("n2", n2.tr.LocalAddr(), &raft.RequestVoteRequest{RPCHeader: h, Term: 4}, &rv),
			"RequestPreVote": n9.RequestPreVote("n2", n2.tr.LocalAddr(), &raft.RequestPreVoteRequest{RPCHeader: h, Term: 5}, &pv),
			"InstallSnapshot": n9.InstallSnapshot("n2", n2.tr.LocalAddr(), &raft.InstallSnapshotRequest{RPCHeader: h, Term: 6, Size: int64(len(snapshot))}, &is,
				bytes.NewReader(snapshot)),
			"TimeoutNow": n9.TimeoutNow("n2", n2.tr.LocalAddr(), &raft.TimeoutNowRequest{RPCHeader: h}, &tn),
		}
	}
	for name, err := range send("n3") {
		rpc := name
		if name == "heartbeat" {
			rpc = "AppendEntries"
		}
		refusedIdentity(t, name+" from n9 naming n3", err, rpc, `"n3"`, `"n9"`)
	}
	n2.untouched(t)
	// Logged at warn level once per connection (raft may use a few), and nothing else.
	logs := n2.logs.String()
	if warned := strings.Count(logs, "level=WARN msg=\"transport: refused raft RPC\""); warned < 1 || warned >= 6 || strings.Count(logs, "\n") != warned {
		t.Fatalf("want the refused RPCs logged at warn level once per connection, and nothing else:\n%s", logs)
	}

	for name, err := range send("n9") {
		if err != nil {
			t.Fatalf("%s from n9 naming n9: %v", name, err)
		}
	}
	if r, b := n2.rpcs.Load(), n2.beats.Load(); r != 5 || b != 1 {
		t.Fatalf("delivered %d RPCs to the Consumer and %d heartbeats; want 5 and 1", r, b)
	}
}

// Without WithPeerIDCheck only the CA counts, as before: a certificate naming n9 whose holder
// says it is n3, or says nothing, is served, and its RPCs naming n3 are delivered.
func TestPeerIDCheckOffChecksTheCAOnly(t *testing.T) {
	ca := newCA(t, "cluster CA")
	n2 := newCheckingMember(t, withFilesTLS(t, ca, "n2"), transport.WithLocalID("n2"))
	claimsN3 := newTCP(t, withFilesTLS(t, ca, "n9"), transport.WithLocalID("n3"))
	silent := newTCP(t, withFilesTLS(t, ca, "n9"))
	for _, tr := range []*transport.TCPTransport{claimsN3, silent} {
		if _, err := tr.Call(context.Background(), "n2", n2.tr.LocalAddr(), []byte("x")); err != nil {
			t.Fatalf("Call: %v", err)
		}
		var rv raft.RequestVoteResponse
		if err := tr.RequestVote("n2", n2.tr.LocalAddr(), &raft.RequestVoteRequest{RPCHeader: header("n3", tr.LocalAddr()), Term: 1}, &rv); err != nil || !rv.Granted {
			t.Fatalf("RequestVote naming n3: %+v, %v", rv, err)
		}
	}
	if n, r := n2.echo.n.Load(), n2.rpcs.Load(); n != 2 || r != 2 {
		t.Fatalf("served %d Calls and %d RPCs, want 2 and 2", n, r)
	}
	// A member that does not check still states its ID, so one that does accepts it.
	checking := newCheckingMember(t, withIdentity(t, ca, "n1")...)
	if _, err := n2.tr.Call(context.Background(), "n1", checking.tr.LocalAddr(), []byte("x")); err != nil {
		t.Fatalf("non-checking n2 → checking n1: %v", err)
	}
}

// A transport of the previous protocol version (a preamble without an ID) gets the answer any
// foreign program gets, at once.
func TestTCPRefusesPreambleVersion1(t *testing.T) {
	ca := newCA(t, "cluster CA")
	tr := newTCP(t, append(withIdentity(t, ca, "n1"), transport.WithHandshakeTimeout(time.Minute))...)
	cfg, err := ca.TLSConfig("n2")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", string(tr.LocalAddr()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write([]byte("KVT\x01\x02")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || len(got) != 1 || got[0] != 1 {
		t.Fatalf("answer %q, %v; want the refusal byte 1, then EOF", got, err)
	}
}
