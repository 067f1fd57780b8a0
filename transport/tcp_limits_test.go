package transport_test

import (
	"context"
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

// refusedAtOnce connects to addr and fails the test unless the transport there closes the
// connection without waiting for anything. The transports under test wait a minute for a
// handshake, so a connection they accepted would stay open past the 30 s read deadline.
func refusedAtOnce(t *testing.T, addr raft.ServerAddress) {
	t.Helper()
	conn, err := net.Dial("tcp", string(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var netErr net.Error
	if _, err := io.ReadAll(conn); errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatal("a connection over the cap was kept open")
	}
}

// Connections over WithMaxInboundConns are closed as they are accepted and logged; the
// connections already open keep working, and a slot frees up when one of them closes. Raft
// connections count until raft closes them, Call connections until they close.
func TestTCPMaxInboundConns(t *testing.T) {
	logs := &syncBuffer{}
	s := newTCP(t, transport.WithMaxInboundConns(2), transport.WithHandshakeTimeout(time.Minute),
		transport.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	serveEcho(s)
	respondAllTCP(t, s)
	calls, voter, late := newTCP(t), newTCP(t), newTCP(t)
	callEcho(t, calls, s) // one Call connection
	var rv raft.RequestVoteResponse
	if err := voter.RequestVote("s", s.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &rv); err != nil {
		t.Fatal(err) // and one raft connection: the cap is reached
	}

	refusedAtOnce(t, s.LocalAddr())
	if _, err := late.Call(context.Background(), "", s.LocalAddr(), []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Call over the cap: err = %v, want ErrUnreachable", err)
	}
	callEcho(t, calls, s)
	if err := voter.RequestVote("s", s.LocalAddr(), &raft.RequestVoteRequest{Term: 2}, &rv); err != nil {
		t.Fatalf("RequestVote on the open raft connection: %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "too many inbound connections") {
		t.Fatalf("the refusal was not logged at warn level:\n%s", got)
	}

	voter.Close() // its raft connection closes: raft's handler at s ends and frees the slot
	pollUntil(t, 10*time.Second, "a free connection slot", func() bool {
		_, err := late.Call(context.Background(), "", s.LocalAddr(), []byte("x"))
		return err == nil
	})
}

// Connections that have not finished their handshake are capped apart, below the inbound cap:
// a flood of silent clients holds only WithMaxHandshakingConns slots, every connection beyond
// is closed at once, the established connections are not disturbed, and new ones are
// accepted again once the flood's connections close.
func TestTCPMaxHandshakingConns(t *testing.T) {
	ca := newCA(t, "cluster CA")
	for _, tc := range []struct {
		name         string
		server, peer func(name string) []transport.Option
	}{
		{"plain", func(string) []transport.Option { return nil }, func(string) []transport.Option { return nil }},
		{"tls",
			func(name string) []transport.Option { return withIdentity(t, ca, name) },
			func(name string) []transport.Option { return withIdentity(t, ca, name) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			s := newTCP(t, append(tc.server("s"), transport.WithMaxInboundConns(8), transport.WithMaxHandshakingConns(2),
				transport.WithHandshakeTimeout(time.Minute), transport.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))...)
			serveEcho(s)
			established, late := newTCP(t, tc.peer("p1")...), newTCP(t, tc.peer("p2")...)
			callEcho(t, established, s)

			// Two clients connect and say nothing: both are accepted, and hold the handshake
			// slots (the server accepts in order, so before any later connection).
			var silent []net.Conn
			for range 2 {
				conn, err := net.Dial("tcp", string(s.LocalAddr()))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				silent = append(silent, conn)
			}
			for range 10 { // more than the inbound cap: the flood never reaches it
				refusedAtOnce(t, s.LocalAddr())
			}
			if _, err := late.Call(context.Background(), "", s.LocalAddr(), []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
				t.Fatalf("Call during the flood: err = %v, want ErrUnreachable", err)
			}
			callEcho(t, established, s)
			if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "still in their handshake") {
				t.Fatalf("the refusals were not logged at warn level:\n%s", got)
			}

			for _, conn := range silent {
				conn.Close()
			}
			pollUntil(t, 10*time.Second, "the handshake slots to free up", func() bool {
				_, err := late.Call(context.Background(), "", s.LocalAddr(), []byte("x"))
				return err == nil
			})
			callEcho(t, established, s)
		})
	}
}
