package transport_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// join attaches a transport at addr and closes it when the test ends.
func join(t *testing.T, n *transport.Network, addr raft.ServerAddress, opts ...transport.Option) *transport.MemTransport {
	t.Helper()
	tr, err := n.Join(string(addr), opts...)
	if err != nil {
		t.Fatalf("Join(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// counter is a handler that answers "<name>:<request>" and counts the requests it served.
type counter struct {
	name string
	n    atomic.Int64
}

func (c *counter) handle(_ context.Context, req []byte) []byte {
	c.n.Add(1)
	return append([]byte(c.name+":"), req...)
}

// serve installs an echo handler named after the transport's address and returns its counter.
func serve(tr *transport.MemTransport) *counter {
	c := &counter{name: string(tr.LocalAddr())}
	tr.SetHandler(c.handle)
	return c
}

// callOK calls to from from and fails the test unless the echo reply comes back.
func callOK(t *testing.T, from *transport.MemTransport, to raft.ServerAddress) {
	t.Helper()
	reply, err := from.Call(context.Background(), "", to, []byte("ping"))
	if err != nil {
		t.Fatalf("Call %s→%s: %v", from.LocalAddr(), to, err)
	}
	if want := string(to) + ":ping"; string(reply) != want {
		t.Fatalf("Call %s→%s: reply %q, want %q", from.LocalAddr(), to, reply, want)
	}
}

// callLost calls to from from and fails the test unless it fails with ErrUnreachable.
func callLost(t *testing.T, from *transport.MemTransport, to raft.ServerAddress) {
	t.Helper()
	reply, err := from.Call(context.Background(), "", to, []byte("ping"))
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Call %s→%s: reply %q, err %v; want ErrUnreachable", from.LocalAddr(), to, reply, err)
	}
}

// waitFor polls cond in virtual time until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
