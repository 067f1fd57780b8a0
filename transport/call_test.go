package transport_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/transport"
)

func TestCallRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		ca, cb := serve(a), serve(b)

		callOK(t, a, "b")
		callOK(t, b, "a")
		callOK(t, a, "a") // loopback
		if ca.n.Load() != 2 || cb.n.Load() != 1 {
			t.Fatalf("handler runs: a=%d b=%d, want 2 and 1", ca.n.Load(), cb.n.Load())
		}
	})
}

func TestCallCopiesRequestAndReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		shared := []byte("reply")
		var got []byte
		b.SetHandler(func(_ context.Context, req []byte) []byte {
			got = req
			return shared
		})
		req := []byte("request")
		reply, err := a.Call(context.Background(), "", "b", req)
		if err != nil {
			t.Fatal(err)
		}
		req[0], shared[0] = 'X', 'X'
		if string(got) != "request" || string(reply) != "reply" {
			t.Fatalf("handler saw %q, caller got %q: buffers are shared", got, reply)
		}
	})
}

func TestCallUnknownAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a := join(t, n, "a")
		_, err := a.Call(context.Background(), "", "nobody", []byte("x"))
		if !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		if !strings.Contains(err.Error(), "nobody") {
			t.Fatalf("error %q does not name the target", err)
		}
	})
}

func TestCallClosedAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		serve(b)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := a.Call(context.Background(), "", "b", []byte("x"))
		if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "b") {
			t.Fatalf("err = %v, want ErrUnreachable naming b", err)
		}
	})
}

func TestCallNoHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		if _, err := a.Call(context.Background(), "", "b", nil); !errors.Is(err, transport.ErrNoHandler) {
			t.Fatalf("err = %v, want ErrNoHandler", err)
		}
		serve(b)
		callOK(t, a, "b")
		b.SetHandler(nil)
		if _, err := a.Call(context.Background(), "", "b", nil); !errors.Is(err, transport.ErrNoHandler) {
			t.Fatalf("after SetHandler(nil): err = %v, want ErrNoHandler", err)
		}
	})
}

// A slow handler does not hold the caller past its deadline; the handler's context carries the
// deadline and ends with it.
func TestCallDeadlineWithSlowHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		handlerErr := make(chan error, 1)
		var handlerDeadline time.Time
		b.SetHandler(func(ctx context.Context, _ []byte) []byte {
			handlerDeadline, _ = ctx.Deadline()
			select {
			case <-time.After(time.Hour):
				handlerErr <- nil
			case <-ctx.Done():
				handlerErr <- ctx.Err()
			}
			return []byte("late")
		})

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		reply, err := a.Call(ctx, "", "b", []byte("x"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Call = %q, %v; want DeadlineExceeded", reply, err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("Call returned after %v, want exactly 100ms", d)
		}
		if err := <-handlerErr; err == nil {
			t.Fatal("handler context was not cancelled")
		}
		if want, _ := ctx.Deadline(); !handlerDeadline.Equal(want) {
			t.Fatalf("handler deadline %v, want the caller's %v", handlerDeadline, want)
		}
	})
}

func TestCallHandlerContextCancelledWhenCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
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
			_, err := a.Call(ctx, "", "b", []byte("x"))
			callErr <- err
		}()
		<-started
		synctest.Wait()
		select {
		case err := <-callErr:
			t.Fatalf("Call returned before the caller gave up: %v", err)
		default:
		}
		cancel()
		if err := <-callErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("Call err = %v, want context.Canceled", err)
		}
		if err := <-handlerErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ctx err = %v, want context.Canceled", err)
		}
	})
}

func TestCallAlreadyCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		c := serve(b)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := a.Call(ctx, "", "b", nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if c.n.Load() != 0 {
			t.Fatal("handler ran for a call whose context was already done")
		}
	})
}

// Calls run concurrently: the first handler waits for the second to start.
func TestCallsRunConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
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
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		firstErr := make(chan error, 1)
		go func() {
			_, err := a.Call(ctx, "", "b", []byte("first"))
			firstErr <- err
		}()
		synctest.Wait() // the first handler is blocked
		if _, err := a.Call(ctx, "", "b", []byte("second")); err != nil {
			t.Fatal(err)
		}
		if err := <-firstErr; err != nil {
			t.Fatalf("first call: %v", err)
		}
	})
}
