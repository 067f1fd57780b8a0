package kvstore

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/watch"
)

// TestBindShutdownReachesRaftFutures pins the hashicorp/raft layout that
// bindShutdown relies on: every future type a Node waits on has a settable
// ShutdownCh, and closing it ends Error.
func TestBindShutdownReachesRaftFutures(t *testing.T) {
	conf := raft.DefaultConfig()
	conf.LocalID = "a"
	conf.Logger = hclog.NewNullLogger()
	store := raft.NewInmemStore()
	_, tr := raft.NewInmemTransport("a")
	r, err := raft.NewRaft(conf, newFSM(1, 128, watch.Config{}), store, store, raft.NewDiscardSnapshotStore(), tr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown()
	// Not bootstrapped: a follower forever, so leader-only futures stay
	// queued or fail; each must be bindable.
	futures := map[string]raft.Future{
		"GetConfiguration": r.GetConfiguration(),
		"VerifyLeader":     r.VerifyLeader(),
	}
	for name, f := range futures {
		stop := make(chan struct{})
		if !bindShutdown(f, stop) {
			t.Errorf("%s: %T has no settable ShutdownCh", name, f)
		}
	}
	// Apply and Barrier return their future only once raft's loop takes
	// it; check the type they use through an Apply that raft answers.
	apply := r.Apply([]byte("x"), 0)
	if !bindShutdown(apply, make(chan struct{})) {
		t.Errorf("Apply: %T has no settable ShutdownCh", apply)
	}
	if err := apply.Error(); err != raft.ErrNotLeader {
		t.Errorf("apply on a follower: %v", err)
	}
}

// Every write waits on a future: once a future type is known, binding its
// ShutdownCh allocates nothing (reflect's lookup by name did, each time),
// and it sets the field.
func TestShutdownFieldsBindWithoutAllocating(t *testing.T) {
	conf := raft.DefaultConfig()
	conf.LocalID = "a"
	conf.Logger = hclog.NewNullLogger()
	store := raft.NewInmemStore()
	_, tr := raft.NewInmemTransport("a")
	r, err := raft.NewRaft(conf, newFSM(1, 128, watch.Config{}), store, store, raft.NewDiscardSnapshotStore(), tr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown()
	var fields shutdownFields
	f := r.VerifyLeader() // a follower forever: never answered
	stop := make(chan struct{})
	if !fields.bind(f, stop) {
		t.Fatalf("%T: no settable ShutdownCh", f)
	}
	if n := testing.AllocsPerRun(100, func() { fields.bind(f, stop) }); n != 0 {
		t.Errorf("bind allocates %v times per call", n)
	}
	if fields.bind(doneFuture{}, stop) {
		t.Error("bound a future without the field")
	}
	if got := reflect.ValueOf(f).Elem().FieldByName("ShutdownCh").Interface(); got != stop {
		t.Errorf("ShutdownCh is %v after bind, want %v", got, stop)
	}
}

// doneFuture is a raft.Future that has already failed with err.
type doneFuture struct{ err error }

func (f doneFuture) Error() error { return f.err }

// A write refused because a leadership transfer is under way was never
// appended: waitFuture reports it as ErrNotLeader, which routeToLeader
// retries, not as raft's own error, which callers cannot match.
func TestWaitFutureLeadershipTransferIsNotLeader(t *testing.T) {
	n := &Node{closed: make(chan struct{})}
	n.closedCtx, n.cancelClosed = context.WithCancel(context.Background())
	defer n.cancelClosed()
	err := n.waitFuture(context.Background(), doneFuture{raft.ErrLeadershipTransferInProgress})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("waitFuture during a leadership transfer: %v, want ErrNotLeader", err)
	}
	if got := toWireError(err); !errors.Is(fromWireError(got), ErrNotLeader) {
		t.Fatalf("over the wire: %v, want ErrNotLeader", fromWireError(got))
	}
}

// blockingFuture is a raft.Future that is never answered, like an entry
// still queued when raft shuts down (hashicorp/raft#498): only its
// ShutdownCh ends Error.
type blockingFuture struct {
	ShutdownCh chan struct{}
}

func (f *blockingFuture) Error() error {
	<-f.ShutdownCh
	return raft.ErrRaftShutdown
}

// A wait with a context on a future raft never answers ends with the
// node's Close (ErrClosed), whether it began before Close or after, and
// with its context (the context's error); either way it leaves nothing
// registered behind.
func TestWaitFutureEndsAtCloseOrContext(t *testing.T) {
	n := &Node{closed: make(chan struct{})}
	n.closedCtx, n.cancelClosed = context.WithCancel(context.Background())
	defer n.cancelClosed()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.waitFuture(ctx, &blockingFuture{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context: %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- n.waitFuture(ctx, &blockingFuture{}) }()
	n.stopServing()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("wait across Close: %v, want ErrClosed", err)
	}
	if err := n.waitFuture(ctx, &blockingFuture{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after Close: %v, want ErrClosed", err)
	}
	n.futureWaits.mu.Lock()
	left := len(n.futureWaits.set)
	n.futureWaits.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d stops still registered", left)
	}
}
