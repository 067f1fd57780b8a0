package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Network is an in-memory fabric joining the MemTransports of one cluster, with fault
// injection. Networks are independent of each other: many may live in one process. All methods
// are safe for concurrent use. The zero value is not usable; call NewNetwork.
type Network struct {
	mu     sync.RWMutex
	nodes  map[raft.ServerAddress]*MemTransport // live (not closed) transports
	faults faults
}

// NewNetwork returns an empty network with no faults.
func NewNetwork() *Network {
	return &Network{nodes: make(map[raft.ServerAddress]*MemTransport)}
}

// Join attaches a new transport at addr, any non-empty name unique on the network (a node's
// ID does well), and returns it for kvstore.WithTransport; the node's kvstore.Peer.Address is
// the same addr. It fails with an error wrapping ErrAddressInUse if a live transport already
// holds addr; once that transport is closed the address may be joined again (a node restart).
// Faults injected for addr apply to whichever transport holds it.
func (n *Network) Join(address string, opts ...Option) (*MemTransport, error) {
	if address == "" {
		return nil, errors.New("transport: join: empty address")
	}
	addr := raft.ServerAddress(address)
	ctx, cancel := context.WithCancel(context.Background())
	t := &MemTransport{
		net:       n,
		addr:      addr,
		cfg:       newConfig(opts),
		consumer:  make(chan raft.RPC),
		ctx:       ctx,
		cancel:    cancel,
		closeDone: make(chan struct{}),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.nodes[addr]; ok {
		cancel()
		return nil, fmt.Errorf("%w: %s", ErrAddressInUse, addr)
	}
	n.nodes[addr] = t
	return t, nil
}

// route returns the live transport at to if a message from→to would be delivered now, or an
// error wrapping ErrUnreachable.
func (n *Network) route(from, to raft.ServerAddress) (*MemTransport, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	peer, ok := n.nodes[to]
	if !ok {
		return nil, unreachable(to, "no live node at this address")
	}
	if n.faults.blocks(from, to) {
		return nil, unreachable(to, "link cut")
	}
	return peer, nil
}

// leave detaches t, freeing its address.
func (n *Network) leave(t *MemTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[t.addr] == t {
		delete(n.nodes, t.addr)
	}
}

// MemTransport is a Transport on a Network, created by Network.Join. Raft RPCs are delivered to
// the target's Consumer channel (or its heartbeat handler, for heartbeats) and bounded by the
// RPC timeout; Calls run the target's Handler on a goroutine owned by the target. All methods
// are safe for concurrent use.
type MemTransport struct {
	net  *Network
	addr raft.ServerAddress
	cfg  config

	consumer  chan raft.RPC // unbuffered: an RPC is handed over only when raft takes it
	handler   atomic.Pointer[Handler]
	heartbeat atomic.Pointer[func(raft.RPC)]
	gate      heartbeatGate // the fast path closed while a TimeoutNow is handled

	// ctx is cancelled by Close; it parents every handler context and every RPC wait.
	ctx    context.Context
	cancel context.CancelFunc

	// lifecycle counts running handler goroutines and heartbeats being
	// delivered.
	lifecycle
	// closeDone is closed when the first Close has finished. Later and concurrent Closes wait on
	// it rather than on a mutex (sync.Once), so that they count as durably blocked in a
	// testing/synctest bubble and virtual time can advance while handlers wind down.
	closeDone chan struct{}
}

var _ Transport = (*MemTransport)(nil)

// LocalAddr returns the address the transport joined its network with.
func (t *MemTransport) LocalAddr() raft.ServerAddress { return t.addr }

// SetHandler installs h to answer Calls arriving at t, replacing any previous handler; nil
// removes it, after which Calls to t fail with ErrNoHandler. Calls already running keep the
// handler they started with.
func (t *MemTransport) SetHandler(h Handler) {
	if h == nil {
		t.handler.Store(nil)
		return
	}
	t.handler.Store(&h)
}

// Call sends request to the transport at target and waits for the reply of its Handler. See
// Transport.Call for the errors. The request and reply are copied. The handler's context
// carries ctx's deadline and is cancelled when Call returns early (ctx done, t closed) or the
// target closes. If the reply direction is cut when the handler returns, the handler's work
// stands and Call returns ErrUnreachable. The peer's id is not checked: an in-memory network
// has no impostors.
func (t *MemTransport) Call(ctx context.Context, _ raft.ServerID, target raft.ServerAddress, request []byte) ([]byte, error) {
	if t.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, notDelivered(fmt.Errorf("transport: call to %s: %w", target, err))
	}
	peer, err := t.net.route(t.addr, target)
	if err != nil {
		return nil, notDelivered(err)
	}
	h := peer.handler.Load()
	if h == nil {
		// The refusal is a reply too: it is lost if the reply direction is cut.
		if t.net.Blocked(target, t.addr) {
			return nil, unreachable(target, "reply lost")
		}
		return nil, notDelivered(fmt.Errorf("%w: %s", ErrNoHandler, target))
	}

	hctx, cancel := peer.handlerContext(ctx)
	defer cancel()
	req := bytes.Clone(request)
	done := make(chan callResult, 1) // never blocks the handler goroutine
	started := peer.spawn(func() {
		reply := (*h)(hctx, req)
		if t.net.Blocked(target, t.addr) {
			done <- callResult{err: unreachable(target, "reply lost")}
			return
		}
		done <- callResult{reply: bytes.Clone(reply)}
	})
	if !started {
		return nil, notDelivered(unreachable(target, "closed"))
	}

	select {
	case r := <-done:
		if err := expired(ctx); err != nil {
			// The reply and the deadline came at the same moment (the handler's context shares
			// the deadline); report the deadline, so the outcome does not depend on scheduling.
			return nil, fmt.Errorf("transport: call to %s: %w", target, err)
		}
		return r.reply, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: call to %s: %w", target, ctx.Err())
	case <-t.ctx.Done():
		return nil, fmt.Errorf("%w: call to %s interrupted", ErrClosed, target)
	case <-peer.ctx.Done():
		return nil, unreachable(target, "closed")
	}
}

// expired returns ctx's error, or context.DeadlineExceeded once ctx's deadline has passed even
// if the timer that cancels ctx has not run yet.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// callResult is what a handler goroutine hands back to its caller.
type callResult struct {
	reply []byte
	err   error
}

// handlerContext derives the context for a handler serving a caller whose context is caller:
// it ends when t closes, at caller's deadline, or when the returned cancel is called.
func (t *MemTransport) handlerContext(caller context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := caller.Deadline(); ok {
		return context.WithDeadline(t.ctx, dl)
	}
	return context.WithCancel(t.ctx)
}

// Close detaches t from its network, fails pending and future operations to and from it, and
// waits for its running handlers to return (their contexts are cancelled). It is idempotent and
// always returns nil; concurrent calls all return after the first has finished.
func (t *MemTransport) Close() error {
	if t.shut() {
		t.net.leave(t)
		t.cancel()
		t.wg.Wait()
		close(t.closeDone)
	}
	<-t.closeDone
	return nil
}
