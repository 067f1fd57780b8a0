package transport_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// A Call failure says whether the request certainly never reached the
// peer's handler (ErrNotDelivered: the caller may send it again) or may
// have (the outcome is unknown). Over the in-memory network:
func TestMemCallNotDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b, c := join(t, n, "a"), join(t, n, "b"), join(t, n, "c")
		cb := serve(b)

		notDelivered := func(what string, to raft.ServerAddress, reason error) {
			t.Helper()
			_, err := a.Call(context.Background(), "", to, []byte("x"))
			if !errors.Is(err, transport.ErrNotDelivered) || !errors.Is(err, reason) {
				t.Fatalf("%s: err = %v, want ErrNotDelivered with %v", what, err, reason)
			}
		}
		notDelivered("unknown address", "nobody", transport.ErrUnreachable)
		notDelivered("no handler", "c", transport.ErrNoHandler)
		n.Cut("a", "b")
		notDelivered("request direction cut", "b", transport.ErrUnreachable)
		n.Heal()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		notDelivered("closed peer", "c", transport.ErrUnreachable)
		if got := cb.n.Load(); got != 0 {
			t.Fatalf("b's handler ran %d times for requests reported not delivered", got)
		}

		// Only the reply is lost: the handler ran, so the outcome is unknown.
		n.Cut("b", "a")
		_, err := a.Call(context.Background(), "", "b", []byte("x"))
		if !errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrNotDelivered) {
			t.Fatalf("reply direction cut: err = %v, want ErrUnreachable without ErrNotDelivered", err)
		}
		if got := cb.n.Load(); got != 1 {
			t.Fatalf("b's handler ran %d times, want 1", got)
		}
	})
}

// Over TCP: a refused dial, an oversized request and a peer without a
// handler are not delivered; a peer that goes away while a request is on
// the connection leaves the outcome unknown.
func TestTCPCallNotDelivered(t *testing.T) {
	a := newTCP(t, transport.WithMaxMessageSize(1024))
	_, err := a.Call(context.Background(), "", raft.ServerAddress(closedAddr(t)), []byte("x"))
	if !errors.Is(err, transport.ErrNotDelivered) || !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("refused dial: err = %v, want ErrNotDelivered with ErrUnreachable", err)
	}

	b := newTCP(t)
	_, err = a.Call(context.Background(), "", b.LocalAddr(), []byte("x"))
	if !errors.Is(err, transport.ErrNotDelivered) || !errors.Is(err, transport.ErrNoHandler) {
		t.Fatalf("no handler: err = %v, want ErrNotDelivered with ErrNoHandler", err)
	}
	_, err = a.Call(context.Background(), "", b.LocalAddr(), make([]byte, 2048))
	if !errors.Is(err, transport.ErrNotDelivered) || !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("oversized request: err = %v, want ErrNotDelivered with ErrTooLarge", err)
	}

	running := make(chan struct{})
	b.SetHandler(func(ctx context.Context, _ []byte) []byte {
		close(running)
		<-ctx.Done()
		return nil
	})
	errs := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "", b.LocalAddr(), []byte("x"))
		errs <- err
	}()
	<-running
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	err = <-errs
	if !errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrNotDelivered) {
		t.Fatalf("peer closed with the request running: err = %v, want ErrUnreachable without ErrNotDelivered", err)
	}
	// The broken connection is noticed; the next Call dials again, which
	// is refused: not delivered.
	_, err = a.Call(context.Background(), "", b.LocalAddr(), []byte("x"))
	if !errors.Is(err, transport.ErrNotDelivered) {
		t.Fatalf("after the peer closed: err = %v, want ErrNotDelivered", err)
	}
}
