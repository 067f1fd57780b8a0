package kvstore

import (
	"errors"
	"sync"
	"time"

	"github.com/kvstore/kvstore/mvcc"
)

// TestHooks are fault-injection seams for tests of kvstore itself and of
// the programs that embed it, like etcd's failpoints: kvtest and the
// robustness suite (internal/robustness) use them to jump a leader's clock
// and to slow one member's apply. A nil field means the real behaviour.
// Production code has no reason to set them.
//
// The hooks are called from the node's own goroutines: Now from the
// leadership, lease and apply goroutines and from callers of the lease
// API, concurrently; BeforeApply from raft's FSM goroutine only;
// BeforeRestore as its doc says. Each must be safe for concurrent use with
// whatever else the test does, and must not call back into the node.
type TestHooks struct {
	// Now replaces time.Now for the node's lease clock: the deadlines the
	// leader keeps, its renewals, TimeToLive, and its expiry and checkpoint
	// loop. It never influences what apply writes (Invariant 1), only
	// when the leader decides a lease has expired. Raft's own timers are
	// not affected.
	Now func() time.Time
	// BeforeApply is called before the FSM applies each log entry (of any
	// type) at index; a hook that sleeps makes this member apply slowly.
	BeforeApply func(index uint64)
	// BeforeRestore is called before the FSM restores a snapshot: on raft's
	// FSM goroutine, or on the goroutine calling Open while raft restores
	// the newest local snapshot at startup.
	BeforeRestore func()
	// BeforeStoreLogs is called before the node appends entries to its raft
	// log, on raft's goroutines; a non-nil error fails the append with it,
	// as a failing disk would. An error wrapping syscall.ENOSPC is a full
	// disk (see ErrNoSpace). The node also calls it to probe whether a full
	// disk takes writes again.
	BeforeStoreLogs func() error
	// DuringStoreLogs is called while the node appends entries to its raft
	// log, on raft's goroutines, after BeforeStoreLogs let the append
	// through and a leader sent the entries on to its followers
	// (eagerappend.go); a hook that sleeps makes the disk slow.
	DuringStoreLogs func()
	// Store, when non-nil, is bound by Open to the node it opens (each
	// Open with these hooks rebinds it): through it a test corrupts that
	// node's in-memory store, for the corruption checks to find.
	Store *StoreFault
}

// WithTestHooks installs fault-injection hooks (see TestHooks). For tests.
func WithTestHooks(h TestHooks) Option {
	return func(c *config) error {
		c.hooks = h
		return nil
	}
}

// now is the node's lease clock: time.Now unless a test hook replaces it.
func (h TestHooks) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// beforeApply runs the BeforeApply hook, if any.
func (h TestHooks) beforeApply(index uint64) {
	if h.BeforeApply != nil {
		h.BeforeApply(index)
	}
}

// beforeRestore runs the BeforeRestore hook, if any.
func (h TestHooks) beforeRestore() {
	if h.BeforeRestore != nil {
		h.BeforeRestore()
	}
}

// beforeStoreLogs runs the BeforeStoreLogs hook, if any.
func (h TestHooks) beforeStoreLogs() error {
	if h.BeforeStoreLogs != nil {
		return h.BeforeStoreLogs()
	}
	return nil
}

// duringStoreLogs returns the DuringStoreLogs hook, nil if none.
func (h TestHooks) duringStoreLogs() func() { return h.DuringStoreLogs }

// StoreFault is a test's handle on the in-memory store of the node last
// opened with it in TestHooks.Store: it changes that store behind raft's
// back, as a bit flip in a member's memory would, not its disk files (a
// restart rebuilds the store from the snapshot and the log, without the
// damage). It is safe for concurrent use, and, unlike other hooks, may be
// called from within BeforeApply and BeforeRestore (between entries, on
// the apply goroutine) as well as from any other goroutine.
type StoreFault struct {
	mu   sync.Mutex
	node *Node
}

// bind points f at n; a nil f does nothing.
func (f *StoreFault) bind(n *Node) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.node = n
	f.mu.Unlock()
}

// OverwriteValue replaces the value of key's current version in the
// node's store, keeping its revisions (mvcc.Store.OverwriteValue): reads
// on that node then return value, and its HashKV differs from the other
// members'. It is ErrKeyNotFound when the key has no current version
// there, ErrClosed before the first Open with f or once that node is
// closed.
func (f *StoreFault) OverwriteValue(key, value []byte) error {
	f.mu.Lock()
	n := f.node
	f.mu.Unlock()
	if n == nil {
		return ErrClosed
	}
	err := n.fsm.kv.OverwriteValue(key, value)
	if errors.Is(err, mvcc.ErrClosed) {
		return n.errClosed()
	}
	n.hashes.forget()
	return err
}
