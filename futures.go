package kvstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/storage"
)

// hashicorp/raft futures have no context, and an Apply or Barrier future
// whose entry is still queued when raft shuts down is never answered: its
// Error blocks forever (hashicorp/raft#498, open). Every future raft
// returns embeds a struct whose exported ShutdownCh field, when set, makes
// Error return raft.ErrRaftShutdown once the channel is closed; raft sets
// it only for its own internal futures. bindShutdown sets it to a channel
// of ours, so that waiting on a future ends with the caller's context or
// the node's Close, without a goroutine per wait. A test pins the field,
// so a raft upgrade that renames it fails loudly.

var shutdownChType = reflect.TypeOf((chan struct{})(nil))

// bindShutdown makes f.Error return when stop is closed. It reports false
// for futures without the field (raft's already-failed errorFuture), which
// never block.
func bindShutdown(f raft.Future, stop chan struct{}) bool {
	var fields shutdownFields
	return fields.bind(f, stop)
}

// shutdownFields remembers where each future type keeps its ShutdownCh:
// reflect's lookup by name allocates on every call, and every write waits
// on a future. Its zero value is ready; safe for concurrent use.
type shutdownFields struct {
	index sync.Map // future type -> []int, nil for a type without the field
}

// bind is bindShutdown through the cache.
func (s *shutdownFields) bind(f raft.Future, stop chan struct{}) bool {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return false
	}
	cached, ok := s.index.Load(v.Type())
	if !ok {
		var index []int
		if field, found := v.Type().Elem().FieldByName("ShutdownCh"); found && field.Type == shutdownChType {
			index = field.Index
		}
		cached, _ = s.index.LoadOrStore(v.Type(), index)
	}
	index := cached.([]int)
	if index == nil {
		return false
	}
	field := v.Elem().FieldByIndex(index)
	if !field.CanSet() {
		return false
	}
	field.Set(reflect.ValueOf(stop))
	return true
}

// futureStop is the channel a future waited on with a context is bound
// to: closed by whichever of the context and the node's Close ends first.
type futureStop struct {
	ch   chan struct{}
	once sync.Once
}

func (s *futureStop) close() { s.once.Do(func() { close(s.ch) }) }

// futureWaits holds the stops of the futures being waited on with a
// context, and closes them all when the node stops serving: one map entry
// per wait instead of an AfterFunc on the node's closed context, whose
// registration cost two allocations per write. The zero value is ready;
// safe for concurrent use.
type futureWaits struct {
	mu     sync.Mutex
	closed bool
	set    map[*futureStop]struct{}
}

// add registers s, or reports false once closeAll has run.
func (w *futureWaits) add(s *futureStop) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if w.set == nil {
		w.set = make(map[*futureStop]struct{})
	}
	w.set[s] = struct{}{}
	return true
}

func (w *futureWaits) remove(s *futureStop) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.set, s)
}

// closeAll closes every registered stop, and every later add fails.
func (w *futureWaits) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for s := range w.set {
		s.close()
	}
	w.set = nil
}

// waitFuture waits for a raft future until ctx ends or the node closes,
// and maps raft's errors to kvstore's. A future abandoned because ctx
// ended may still complete: for a write, it may still commit.
func (n *Node) waitFuture(ctx context.Context, f raft.Future) error {
	stop := n.closed
	if ctx.Done() != nil {
		// Closed by ctx, or by stopServing; once the node has stopped
		// serving, n.closed (closed already) ends the wait.
		if s := (&futureStop{ch: make(chan struct{})}); n.futureWaits.add(s) {
			stop = s.ch
			defer n.futureWaits.remove(s)
			defer context.AfterFunc(ctx, s.close)()
		}
	}
	n.futureFields.bind(f, stop)
	err := f.Error()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrRaftShutdown) && n.closedCtx.Err() != nil:
		return n.errClosed()
	case errors.Is(err, raft.ErrRaftShutdown) && ctx.Err() != nil:
		return fmt.Errorf("%w (the request may still take effect)", ctx.Err())
	case errors.Is(err, raft.ErrRaftShutdown):
		return n.errClosed()
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// raft refused the entry before appending it: nothing happened,
		// and the leadership is moving. Callers retry as for a leader
		// that stepped down (routeToLeader waits for the change).
		return fmt.Errorf("%w: %w", &NotLeaderError{}, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrOutcomeUnknown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return context.DeadlineExceeded
	case errors.Is(err, storage.ErrSentUnstored):
		// This leader's append failed after its followers were sent the
		// entry (eagerappend.go): they may still commit it.
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// waitApplied blocks until this node has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	if n.fsm.appliedIndex() >= index {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.closedCtx, cancel)
	defer stop()
	if err := n.fsm.waitApplied(ctx, index); err != nil {
		if n.closedCtx.Err() != nil {
			return n.errClosed()
		}
		return err
	}
	return nil
}
