package concurrency

import (
	"context"
	"fmt"

	"github.com/kvstore/kvstore"
)

// FencedTxn is a txn that commits only while a lock or a leadership is
// still held: Mutex.Txn and Election.Txn make one. It is built like a
// kvstore.Txn (If, Then, Else, each at most once and in that order) and
// runs as one txn whose outer compare is the fence (the lock or leader
// key still has the create revision of this acquisition) and whose body
// is the caller's txn, nested. A holder that paused, or whose session
// was lost, past the moment another took over cannot slip a write in:
// the store itself refuses it, in the same revision in which it checks
// the fence.
//
// The caller's compares and ops are limited as a nested txn's are: each
// list may hold one op fewer than the node's WithMaxTxnOps.
//
// A FencedTxn is not safe for concurrent use.
type FencedTxn struct {
	ctx     context.Context
	node    *kvstore.Node
	key     []byte
	rev     int64
	lost    error // returned when the fence does not hold
	notHeld error // returned without a txn when nothing is held

	cmps      []kvstore.Cmp
	then, els []kvstore.Op
	stage     int // 0 nothing yet, 1 after If, 2 after Then, 3 after Else
	orderErr  error
}

func (t *FencedTxn) step(stage int) bool {
	if t.stage >= stage {
		t.orderErr = kvstore.ErrTxnOrder
		return false
	}
	t.stage = stage
	return true
}

// If sets the caller's compares.
func (t *FencedTxn) If(cmps ...kvstore.Cmp) *FencedTxn {
	if t.step(1) {
		t.cmps = cmps
	}
	return t
}

// Then sets the ops that run if the fence and every compare hold.
func (t *FencedTxn) Then(ops ...kvstore.Op) *FencedTxn {
	if t.step(2) {
		t.then = ops
	}
	return t
}

// Else sets the ops that run if the fence holds and a compare does not.
func (t *FencedTxn) Else(ops ...kvstore.Op) *FencedTxn {
	if t.step(3) {
		t.els = ops
	}
	return t
}

// Commit runs the txn. If the fence does not hold it changes nothing and
// returns ErrLockLost (a Mutex's) or ErrNotLeader (an Election's);
// otherwise it returns the caller's txn's response (Succeeded says whether
// the caller's compares held) with the outer txn's header. Like any write,
// a commit whose ctx ends, or that fails with kvstore.ErrOutcomeUnknown,
// may still have happened; it is not retried.
func (t *FencedTxn) Commit() (*kvstore.TxnResponse, error) {
	if t.orderErr != nil {
		return nil, t.orderErr
	}
	if t.rev == 0 {
		return nil, t.notHeld
	}
	resp, err := t.node.Txn(t.ctx).
		If(kvstore.Compare(kvstore.CreateRevision(t.key), "=", t.rev)).
		Then(kvstore.OpTxn(t.cmps, t.then, t.els)).
		Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("%w: %s is no longer the key created at revision %d", t.lost, t.key, t.rev)
	}
	inner := resp.Responses[0].Txn
	return &kvstore.TxnResponse{Header: resp.Header, Succeeded: inner.Succeeded, Responses: inner.Responses}, nil
}
