package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// The Call tests of MemTransport (call_test.go, close_test.go), over real loopback TCP.

func TestTCPCallRoundTrip(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	ea, eb := serveEcho(a), serveEcho(b)
	callEcho(t, a, b)
	callEcho(t, b, a)
	callEcho(t, a, a) // loopback, over TCP too
	callEcho(t, a, b) // a pooled connection
	if ea.n.Load() != 2 || eb.n.Load() != 2 {
		t.Fatalf("handler runs: a=%d b=%d, want 2 and 2", ea.n.Load(), eb.n.Load())
	}
	// Empty request and reply.
	b.SetHandler(func(context.Context, []byte) []byte { return nil })
	if reply, err := a.Call(context.Background(), "", b.LocalAddr(), nil); err != nil || len(reply) != 0 {
		t.Fatalf("empty call: %q, %v", reply, err)
	}
}

func TestTCPCallCopiesRequestAndReply(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	shared := []byte("reply")
	got := make(chan []byte, 1)
	b.SetHandler(func(_ context.Context, req []byte) []byte {
		got <- req
		return shared
	})
	req := []byte("request")
	reply, err := a.Call(context.Background(), "", b.LocalAddr(), req)
	if err != nil {
		t.Fatal(err)
	}
	seen := <-got
	req[0], shared[0] = 'X', 'X'
	if string(seen) != "request" || string(reply) != "reply" {
		t.Fatalf("handler saw %q, caller got %q: buffers are shared", seen, reply)
	}
}

func TestTCPCallUnreachable(t *testing.T) {
	a := newTCP(t)
	addr := raft.ServerAddress(closedAddr(t))
	_, err := a.Call(context.Background(), "", addr, []byte("x"))
	if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), string(addr)) {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, addr)
	}

	// A peer that closes, after a connection to it was pooled.
	b := newTCP(t)
	serveEcho(b)
	callEcho(t, a, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The pooled connections are found broken, now or at the next Call.
	for range 3 {
		_, err = a.Call(context.Background(), "", b.LocalAddr(), []byte("x"))
		if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), string(b.LocalAddr())) {
			t.Fatalf("to a closed peer: err = %v, want ErrUnreachable naming it", err)
		}
	}
}

func TestTCPCallNoHandler(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	if _, err := a.Call(context.Background(), "", b.LocalAddr(), nil); !errors.Is(err, transport.ErrNoHandler) {
		t.Fatalf("err = %v, want ErrNoHandler", err)
	}
	serveEcho(b)
	callEcho(t, a, b)
	b.SetHandler(nil)
	if _, err := a.Call(context.Background(), "", b.LocalAddr(), nil); !errors.Is(err, transport.ErrNoHandler) {
		t.Fatalf("after SetHandler(nil): err = %v, want ErrNoHandler", err)
	}
}

// The caller's deadline reaches the handler (as the time left when the request was sent), and
// both ends give up at it.
func TestTCPCallDeadline(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	type seen struct {
		deadline time.Time
		ok       bool
		err      error
	}
	handler := make(chan seen, 1)
	b.SetHandler(func(ctx context.Context, _ []byte) []byte {
		dl, ok := ctx.Deadline()
		<-ctx.Done()
		handler <- seen{dl, ok, ctx.Err()}
		return []byte("late")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	reply, err := a.Call(ctx, "", b.LocalAddr(), []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %q, %v; want DeadlineExceeded", reply, err)
	}
	h := <-handler
	if !h.ok || !errors.Is(h.err, context.DeadlineExceeded) {
		t.Fatalf("handler: deadline set %v, ctx err %v; want a deadline that expired", h.ok, h.err)
	}
	// Same clock here: the handler's deadline is the caller's plus the time in flight.
	if d := h.deadline.Sub(want); d < 0 || d > time.Second {
		t.Fatalf("handler deadline is %v after the caller's, want within [0, 1s]", d)
	}
}

func TestTCPCallHandlerCancelledWhenCallerGivesUp(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	started := make(chan struct{})
	handlerErr := make(chan error, 1)
	b.SetHandler(func(ctx context.Context, _ []byte) []byte {
		close(started)
		<-ctx.Done()
		handlerErr <- ctx.Err()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	callErr := make(chan error, 1)
	go func() {
		_, err := a.Call(ctx, "", b.LocalAddr(), []byte("x"))
		callErr <- err
	}()
	<-started
	cancel()
	if err := <-callErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Call err = %v, want context.Canceled", err)
	}
	if err := <-handlerErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("handler ctx err = %v, want context.Canceled", err)
	}
	// The connection stays usable.
	serveEcho(b)
	callEcho(t, a, b)
}

func TestTCPCallAlreadyCancelledContext(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	e := serveEcho(b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Call(ctx, "", b.LocalAddr(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if e.n.Load() != 0 {
		t.Fatal("handler ran for a call whose context was already done")
	}
}

// Many Calls in flight at once, on the pooled connections, each gets its own reply.
func TestTCPCallsConcurrent(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	b.SetHandler(func(_ context.Context, req []byte) []byte { return bytes.ToUpper(req) })
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 50 {
				req := fmt.Sprintf("req-%d-%d-%s", g, i, strings.Repeat("x", g*i))
				reply, err := a.Call(context.Background(), "", b.LocalAddr(), []byte(req))
				if err != nil || string(reply) != strings.ToUpper(req) {
					t.Errorf("Call %q: %q, %v", req, reply, err)
					return
				}
			}
		})
	}
	wg.Wait()

	// Handlers run concurrently: the first waits for the second to start.
	second := make(chan struct{})
	b.SetHandler(func(ctx context.Context, req []byte) []byte {
		if string(req) == "second" {
			close(second)
			return req
		}
		select {
		case <-second:
			return req
		case <-ctx.Done():
			return nil
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	firstErr := make(chan error, 1)
	go func() {
		_, err := a.Call(ctx, "", b.LocalAddr(), []byte("first"))
		firstErr <- err
	}()
	if _, err := a.Call(ctx, "", b.LocalAddr(), []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := <-firstErr; err != nil {
		t.Fatalf("first call: %v", err)
	}
}

func TestTCPCallTooLarge(t *testing.T) {
	a := newTCP(t, transport.WithMaxMessageSize(1024))
	b := newTCP(t, transport.WithMaxMessageSize(1024))
	e := serveEcho(b)
	if _, err := a.Call(context.Background(), "", b.LocalAddr(), make([]byte, 1025)); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("large request: err = %v, want ErrTooLarge", err)
	}
	if e.n.Load() != 0 {
		t.Fatal("an oversized request reached the handler")
	}
	// The echo reply is the request plus the address: over the limit.
	if _, err := a.Call(context.Background(), "", b.LocalAddr(), make([]byte, 1020)); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("large reply: err = %v, want ErrTooLarge", err)
	}
	callEcho(t, a, b) // the connection survives both

	// A peer with a larger limit sends a frame over b's: b drops the connection.
	big := newTCP(t, transport.WithMaxMessageSize(1<<20))
	if _, err := big.Call(context.Background(), "", b.LocalAddr(), make([]byte, 4096)); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("frame over the receiver's limit: err = %v, want ErrUnreachable", err)
	}
}

func TestTCPClose(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	serveEcho(a)
	serveEcho(b)
	callEcho(t, a, b)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Call(context.Background(), "", b.LocalAddr(), nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Call from closed: err = %v, want ErrClosed", err)
	}
	var vote raft.RequestVoteResponse
	if err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{}, &vote); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("RequestVote from closed: err = %v, want ErrClosed", err)
	}
	if _, err := b.Call(context.Background(), "", a.LocalAddr(), nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Call to closed: err = %v, want ErrUnreachable", err)
	}
	if err := b.RequestVote("a", a.LocalAddr(), &raft.RequestVoteRequest{}, &vote); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("RequestVote to closed: err = %v, want ErrUnreachable", err)
	}
}

// Close fails Calls pending in both directions, cancels the handlers it runs and returns only
// once they have returned; a handler whose caller's transport closes is cancelled too.
func TestTCPCloseFailsPendingAndWaitsForHandlers(t *testing.T) {
	a, b, c := newTCP(t), newTCP(t), newTCP(t)
	var mu sync.Mutex
	finished := map[string]bool{}
	running := make(chan string, 4)
	block := func(name string) transport.Handler {
		return func(ctx context.Context, _ []byte) []byte {
			running <- name
			<-ctx.Done()
			mu.Lock()
			finished[name] = true
			mu.Unlock()
			return nil
		}
	}
	a.SetHandler(block("a"))
	b.SetHandler(block("b"))
	c.SetHandler(block("c"))

	errs := make(chan error, 3)
	go func() { _, err := a.Call(context.Background(), "", b.LocalAddr(), nil); errs <- err }() // from a
	go func() { _, err := b.Call(context.Background(), "", a.LocalAddr(), nil); errs <- err }() // to a
	go func() { _, err := a.Call(context.Background(), "", c.LocalAddr(), nil); errs <- err }() // a's call to c
	for range 3 {
		<-running
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	aDone := finished["a"]
	mu.Unlock()
	if !aDone {
		t.Fatal("Close returned before its handler did")
	}
	for range 3 {
		err := <-errs
		if !errors.Is(err, transport.ErrClosed) && !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("pending call: err = %v, want ErrClosed (from a) or ErrUnreachable (to a)", err)
		}
	}
	// b's and c's handlers served a, whose connections went: they are cancelled.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := finished["b"] && finished["c"]
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("handlers serving a closed caller were not cancelled")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTCPConcurrentClose(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	started := make(chan struct{})
	var mu sync.Mutex
	finished := false
	b.SetHandler(func(ctx context.Context, _ []byte) []byte {
		close(started)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // cleanup work after cancellation
		mu.Lock()
		finished = true
		mu.Unlock()
		return nil
	})
	go func() { _, _ = a.Call(context.Background(), "", b.LocalAddr(), nil) }()
	<-started
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := b.Close(); err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !finished {
				t.Error("a Close returned before the handler finished")
			}
		})
	}
	wg.Wait()
}

// Close leaves no goroutine behind: accept loops, connection servers, call readers and
// writers, handlers, raft's connection handlers.
func TestTCPCloseLeavesNoGoroutines(t *testing.T) {
	ca := newCA(t, "cluster CA")
	t.Run("plain", func(t *testing.T) { closeLeavesNoGoroutines(t, nil, nil) })
	t.Run("tls", func(t *testing.T) {
		closeLeavesNoGoroutines(t, []transport.Option{withFilesTLS(t, ca, "a")}, []transport.Option{withFilesTLS(t, ca, "b")})
	})
}

func closeLeavesNoGoroutines(t *testing.T, aOpts, bOpts []transport.Option) {
	noLeaks(t, func() {
		a, b := newTCP(t, aOpts...), newTCP(t, bOpts...)
		serveEcho(a)
		blocked := make(chan struct{})
		b.SetHandler(func(ctx context.Context, req []byte) []byte {
			if string(req) == "block" {
				close(blocked)
				<-ctx.Done()
			}
			return req
		})
		served := respondAllTCP(t, b)
		callEcho(t, b, a)
		if _, err := a.Call(context.Background(), "", b.LocalAddr(), []byte("x")); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = a.Call(context.Background(), "", b.LocalAddr(), []byte("block")) }()
		<-blocked
		var ae raft.AppendEntriesResponse
		if err := a.AppendEntries("b", b.LocalAddr(), &raft.AppendEntriesRequest{Term: 1}, &ae); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AppendEntriesPipeline("b", b.LocalAddr()); err != raft.ErrPipelineReplicationNotSupported {
			t.Fatalf("AppendEntriesPipeline: err = %v, want raft.ErrPipelineReplicationNotSupported", err)
		}
		if err := a.AppendEntries("b", b.LocalAddr(), &raft.AppendEntriesRequest{Term: 1}, &ae); err != nil {
			t.Fatal(err)
		}
		if served.Load() != 2 {
			t.Fatalf("raft RPCs served: %d, want 2", served.Load())
		}
		// An idle inbound raft connection stays open at b (pooled by a): Close must end it.
		served.stop()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A peer that accepted the connection and then went silent (a machine that vanished, a
// blackholed link) fails a Call that has no deadline: the caller pings the connection and
// gives it up when no pong comes. A slow handler on a live peer is not mistaken for that.
func TestTCPCallSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	defer close(release)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := io.ReadFull(conn, make([]byte, 5)); err != nil {
			return
		}
		_, _ = conn.Write([]byte{0}) // preamble accepted; then silence
		<-release
	}()
	const rpcTimeout = 50 * time.Millisecond
	a := newTCP(t, transport.WithRPCTimeout(rpcTimeout))
	start := time.Now()
	_, err = a.Call(context.Background(), "", raft.ServerAddress(ln.Addr().String()), []byte("x"))
	if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "ping") {
		t.Fatalf("err = %v, want ErrUnreachable after an unanswered ping", err)
	}
	if d := time.Since(start); d < 3*rpcTimeout || d > 10*time.Second {
		t.Fatalf("failed after %v, want about 3 RPC timeouts (ping after 2, pong within 1)", d)
	}

	b := newTCP(t, transport.WithRPCTimeout(rpcTimeout))
	b.SetHandler(func(ctx context.Context, req []byte) []byte {
		select {
		case <-time.After(10 * rpcTimeout): // slow work, through several pings
		case <-ctx.Done():
		}
		return req
	})
	if reply, err := a.Call(context.Background(), "", b.LocalAddr(), []byte("slow")); err != nil || string(reply) != "slow" {
		t.Fatalf("slow handler: %q, %v", reply, err)
	}
}
