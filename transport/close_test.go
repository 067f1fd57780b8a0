package transport_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

func TestJoinAddressInUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a := join(t, n, "a")
		if _, err := n.Join("a"); !errors.Is(err, transport.ErrAddressInUse) {
			t.Fatalf("second Join(a): err = %v, want ErrAddressInUse", err)
		}
		if _, err := n.Join(""); err == nil {
			t.Fatal("Join with an empty address succeeded")
		}
		// Another network is independent.
		join(t, transport.NewNetwork(), "a")

		// After Close the address can be joined again: a restarted node.
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		a2 := join(t, n, "a")
		serve(a2)
		b := join(t, n, "b")
		callOK(t, b, "a")
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		serve(a)
		serve(b)
		callOK(t, a, "b")

		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}

		// Calls and RPCs from a closed transport fail with ErrClosed.
		if _, err := a.Call(context.Background(), "", "b", nil); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("Call from closed: err = %v, want ErrClosed", err)
		}
		var vote raft.RequestVoteResponse
		if err := a.RequestVote("b", "b", &raft.RequestVoteRequest{}, &vote); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("RequestVote from closed: err = %v, want ErrClosed", err)
		}
		// Calls and RPCs to it fail with ErrUnreachable.
		callLost(t, b, "a")
		if err := b.RequestVote("a", "a", &raft.RequestVoteRequest{}, &vote); !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("RequestVote to closed: err = %v, want ErrUnreachable", err)
		}
	})
}

// Close fails calls pending in both directions and returns only after its handlers returned.
func TestCloseFailsPendingAndWaitsForHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		var running atomic.Int64
		block := func(ctx context.Context, _ []byte) []byte {
			running.Add(1)
			defer running.Add(-1)
			<-ctx.Done()
			return nil
		}
		a.SetHandler(block)
		b.SetHandler(block)

		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		errs := make(chan error, 2)
		go func() { _, err := a.Call(ctx, "", "b", nil); errs <- err }() // from a
		go func() { _, err := b.Call(ctx, "", "a", nil); errs <- err }() // to a
		var rpcErr error
		rpcDone := make(chan struct{})
		go func() { // a raft RPC from a that b's raft never takes
			defer close(rpcDone)
			var resp raft.AppendEntriesResponse
			rpcErr = a.AppendEntries("b", "b", &raft.AppendEntriesRequest{}, &resp)
		}()
		synctest.Wait()
		if running.Load() != 2 {
			t.Fatalf("%d handlers running, want 2", running.Load())
		}

		start := time.Now()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v, want no wait beyond its handlers", d)
		}
		for range 2 {
			err := <-errs
			if !errors.Is(err, transport.ErrClosed) && !errors.Is(err, transport.ErrUnreachable) {
				t.Fatalf("pending call: err = %v, want ErrClosed (from a) or ErrUnreachable (to a)", err)
			}
		}
		<-rpcDone
		if !errors.Is(rpcErr, transport.ErrClosed) {
			t.Fatalf("pending RPC: err = %v, want ErrClosed", rpcErr)
		}
		synctest.Wait()
		if running.Load() != 0 {
			t.Fatalf("%d handlers still running after Close", running.Load())
		}
	})
}

// Close waits for the handlers it serves: when Close returns, none is still running.
func TestCloseWaitsForHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		var finished atomic.Bool
		b.SetHandler(func(ctx context.Context, _ []byte) []byte {
			<-ctx.Done()
			time.Sleep(time.Second) // cleanup work after cancellation
			finished.Store(true)
			return nil
		})
		go func() { _, _ = a.Call(context.Background(), "", "b", nil) }()
		synctest.Wait()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if !finished.Load() {
			t.Fatal("Close returned before the handler finished")
		}
	})
}

func TestConcurrentClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		var finished atomic.Bool
		b.SetHandler(func(ctx context.Context, _ []byte) []byte {
			<-ctx.Done()
			time.Sleep(time.Second)
			finished.Store(true)
			return nil
		})
		go func() { _, _ = a.Call(context.Background(), "", "b", nil) }()
		synctest.Wait()
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if err := b.Close(); err != nil {
					t.Error(err)
				}
				if !finished.Load() {
					t.Error("a concurrent Close returned before the first finished")
				}
			})
		}
		wg.Wait()
	})
}
