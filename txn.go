package kvstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/mvcc"
)

// Txn is a transaction under construction, as clientv3.Txn:
//
//	resp, err := n.Txn(ctx).If(cmps...).Then(ops...).Else(ops...).Commit()
//
// If the compares all hold, Then's ops run, otherwise Else's, as one
// revision: all of them or none. If, Then and Else are each optional and may
// each be called once, in that order; a call twice or out of order
// (clientv3 panics) makes Commit return ErrTxnOrder.
//
// A Txn is not safe for concurrent use; the Node is. Commit may be called
// again: each call runs the txn anew.
type Txn struct {
	n         *Node
	ctx       context.Context
	stage     txnStage
	err       error // the first misuse of If, Then or Else
	cmps      []Cmp
	then, els []Op
}

type txnStage uint8

const (
	stageNew txnStage = iota
	stageIf
	stageThen
	stageElse
)

func (s txnStage) String() string {
	return [...]string{"Txn", "If", "Then", "Else"}[s]
}

// TxnResponse answers a Txn.
type TxnResponse struct {
	// Header.Revision is the txn's revision: the new one if it changed
	// anything, else the current one (SEMANTICS.md rule 14).
	Header Header
	// Succeeded reports whether every compare held, so that Then ran.
	Succeeded bool
	// Responses answer the ops of the branch that ran, in order.
	Responses []OpResponse
}

// OpResponse answers one Op: exactly one field is set, matching the Op.
// Inside a txn each response's Header.Revision is the revision as of that op
// (the txn's new one once it has written), and a nested txn's is 0
// (SEMANTICS.md rule 14).
type OpResponse struct {
	Get    *GetResponse
	Put    *PutResponse
	Delete *DeleteResponse
	Txn    *TxnResponse
}

// Txn starts a transaction bounded by ctx.
//
// On Commit, a txn that holds a Put or a Delete anywhere (nested txns
// included, in either branch) is a write: it goes through raft and returns
// once committed and applied on this node; if ctx ends first it may still
// commit. Any other txn is read-only and is served by this node without a
// raft entry and without changing the revision: linearizable (ReadIndex
// first) unless it holds at least one OpGet and every OpGet in it is
// WithSerializable, in which case it reads this node's state, which may lag.
// (etcd differs in two corners: it sends a txn with a nested txn through
// raft, and serves a txn with no ops at all as serializable.) WithSerializable
// on an OpGet inside a write txn is ignored, as in etcd.
func (n *Node) Txn(ctx context.Context) *Txn { return &Txn{n: n, ctx: ctx} }

// If sets the compares; they must all hold for Then to run.
func (t *Txn) If(cmps ...Cmp) *Txn {
	if t.advance(stageIf) {
		t.cmps = slices.Clone(cmps)
	}
	return t
}

// Then sets the ops that run if every compare holds.
func (t *Txn) Then(ops ...Op) *Txn {
	if t.advance(stageThen) {
		t.then = slices.Clone(ops)
	}
	return t
}

// Else sets the ops that run if a compare fails.
func (t *Txn) Else(ops ...Op) *Txn {
	if t.advance(stageElse) {
		t.els = slices.Clone(ops)
	}
	return t
}

func (t *Txn) advance(next txnStage) bool {
	if t.stage >= next {
		if t.err == nil {
			t.err = fmt.Errorf("%w: %s called after %s", ErrTxnOrder, next, t.stage)
		}
		return false
	}
	t.stage = next
	return true
}

// Commit runs the txn. Every error leaves the store unchanged: misuse of
// the builder (ErrTxnOrder), a bad Cmp (ErrInvalidCompare), a bad Op
// (ErrInvalidOpOption, ErrInvalidOp) are found before anything is sent; the
// store's checks — empty keys, ErrTooManyOps, ErrDuplicateKey, and for
// the branch that runs unknown leases, missing keys for WithIgnore*,
// ErrCompacted and ErrFutureRevision — fail the whole txn (SEMANTICS.md
// rules 8, 13, 15, 16). A write txn whose encoding exceeds
// WithMaxRequestBytes is ErrRequestTooLarge; read-only txns are not
// replicated and have no size limit.
func (t *Txn) Commit() (*TxnResponse, error) {
	if t.err != nil {
		return nil, t.err
	}
	req, err := mvccTxn(t.cmps, t.then, t.els)
	if err != nil {
		return nil, err
	}
	var shape txnShape
	shape.add(t.then)
	shape.add(t.els)
	if !shape.writes {
		return t.n.readTxn(t.ctx, req, shape.serializable())
	}
	// Refused before proposing, as etcd's API layer refuses it: a txn that
	// can only be rejected must not cost a log entry on every member.
	if err := mvcc.ValidateTxn(req, t.n.cfg.maxTxnOps); err != nil {
		return nil, err
	}
	res, err := t.n.propose(t.ctx, &wire.Command{Kind: wire.CmdTxn, Txn: wire.TxnOf(req)})
	if err != nil {
		return nil, err
	}
	return txnResponse(res.Txn, t.n.header(res.Txn.Revision)), nil
}

// readTxn serves a txn without writes locally, under the store's read lock
// (mvcc.Store.ReadTxn).
func (n *Node) readTxn(ctx context.Context, req *mvcc.TxnRequest, serializable bool) (*TxnResponse, error) {
	defer n.warnIfSlow("txn", time.Now())
	select {
	case <-n.closed:
		return nil, n.errClosed()
	default:
	}
	if !serializable {
		if err := n.readIndex(ctx); err != nil {
			return nil, err
		}
	}
	if err := n.refuseIfCorrupt(); err != nil {
		return nil, err
	}
	res, err := n.fsm.readTxn(req)
	if err != nil {
		if errors.Is(err, mvcc.ErrClosed) {
			return nil, n.errClosed()
		}
		return nil, err
	}
	return txnResponse(res, n.header(res.Revision)), nil
}

// txnResponse converts r, giving each response h with the revision mvcc
// reported for it.
func txnResponse(r *mvcc.TxnResult, h Header) *TxnResponse {
	resp := &TxnResponse{Header: h, Succeeded: r.Succeeded, Responses: make([]OpResponse, len(r.Results))}
	at := func(rev int64) Header {
		h := h
		h.Revision = rev
		return h
	}
	for i, res := range r.Results {
		out := &resp.Responses[i]
		switch {
		case res.Range != nil:
			out.Get = &GetResponse{Header: at(res.Range.Revision), KVs: res.Range.KVs, Count: res.Range.Count, More: res.Range.More}
		case res.Put != nil:
			out.Put = &PutResponse{Header: at(res.Put.Revision), PrevKV: res.Put.PrevKV}
		case res.Delete != nil:
			out.Delete = &DeleteResponse{Header: at(res.Delete.Revision), Deleted: res.Delete.Deleted, PrevKVs: res.Delete.PrevKVs}
		case res.Txn != nil:
			out.Txn = txnResponse(res.Txn, at(res.Txn.Revision))
		}
	}
	return resp
}

// txnShape tells how a txn must be served: through raft if it writes
// anywhere, locally otherwise, and without ReadIndex if it reads and every
// one of its reads is serializable.
type txnShape struct {
	writes                 bool
	gets, serializableGets int
}

func (s *txnShape) add(ops []Op) {
	for i := range ops {
		switch o := &ops[i]; o.kind {
		case requestPut, requestDelete:
			s.writes = true
		case requestGet:
			s.gets++
			if o.settings.serializable {
				s.serializableGets++
			}
		case requestTxn:
			s.add(o.then)
			s.add(o.els)
		}
	}
}

func (s *txnShape) serializable() bool {
	return !s.writes && s.gets > 0 && s.gets == s.serializableGets
}
