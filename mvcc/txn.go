package mvcc

import (
	"bytes"
	"cmp"
	"fmt"
)

// Txn runs a transaction as one revision. Its steps follow etcd (SEMANTICS.md
// rules 11-16): validate the request (list lengths, empty keys, put
// options), reject duplicate writes along any path, evaluate every compare —
// nested ones too — against the store as it was before the txn, check the
// branch that will run (leases, keys for ignore-*, read revisions), and only
// then apply it. Any failure fails the whole txn, which changes nothing.
func (s *Store) Txn(t *TxnRequest) (*TxnResult, []Event, error) {
	if err := ValidateTxn(t, s.cfg.MaxTxnOps); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	p := s.plan(t)
	if err := s.checkPath(p); err != nil {
		return nil, nil, err
	}
	w := s.newWriter()
	res := w.exec(p)
	events := w.commit()
	res.Revision = s.rev
	return res, events, nil
}

// ReadTxn evaluates a txn that writes nothing — no Put or Delete in either
// branch, at any depth — under the read lock, so that it runs beside other
// reads and delays no writer longer than a Range would. It answers exactly
// as Txn would and changes nothing; a txn that writes is ErrInvalidOp.
func (s *Store) ReadTxn(t *TxnRequest) (*TxnResult, error) {
	if err := validateTxn(t, s.cfg.MaxTxnOps, 1); err != nil {
		return nil, err
	}
	if writes(t) {
		return nil, fmt.Errorf("%w: ReadTxn of a txn that writes", ErrInvalidOp)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	p := s.plan(t)
	if err := s.checkPath(p); err != nil {
		return nil, err
	}
	res := s.newWriter().exec(p) // a writer that never writes: reads only
	res.Revision = s.rev
	return res, nil
}

// writes reports whether a txn has a Put or Delete in either branch, at any
// depth.
func writes(t *TxnRequest) bool {
	for _, list := range [][]Op{t.Then, t.Else} {
		for i := range list {
			if list[i].Put != nil || list[i].Delete != nil || (list[i].Txn != nil && writes(list[i].Txn)) {
				return true
			}
		}
	}
	return false
}

// MaxTxnDepth is how deep txns may nest: a txn holding a txn is depth 2.
// etcd bounds nesting only through rule 16 (each level's op limit shrinks by
// the enclosing one's longest list), which allows up to MaxTxnOps levels of
// one op each; a fixed bound keeps every request's encoding and recursion
// small whatever the configured op limit. Deeper txns get ErrTooManyOps,
// etcd's error for a txn beyond its limits.
const MaxTxnDepth = 64

// ValidateTxn checks everything about t that does not depend on the
// store's contents, as Txn does before it looks at any key: list lengths
// against maxOps (nested txns with the limit reduced, rule 16), nesting
// depth against MaxTxnDepth, empty keys, op shapes and options, then
// duplicate writes (rule 15). A caller that proposes txns to replicas
// calls it first, so that a request that can only fail is refused before
// it costs a log entry; Txn's answer for a txn that passes it depends only
// on the store.
func ValidateTxn(t *TxnRequest, maxOps int) error {
	if err := validateTxn(t, maxOps, 1); err != nil {
		return err
	}
	return checkDuplicates(t)
}

// validateTxn checks a txn's shape in etcd's order: list lengths, compare
// keys, then each op, nested txns with the limit reduced by this txn's
// longest list (rule 16). depth is t's own nesting depth, 1 at the top.
func validateTxn(t *TxnRequest, maxOps, depth int) error {
	if depth > MaxTxnDepth {
		return fmt.Errorf("%w: txns nested %d deep, limit %d", ErrTooManyOps, depth, MaxTxnDepth)
	}
	longest := max(len(t.Compares), len(t.Then), len(t.Else))
	if longest > maxOps {
		return fmt.Errorf("%w: %d, limit %d", ErrTooManyOps, longest, maxOps)
	}
	for i := range t.Compares {
		if len(t.Compares[i].Key) == 0 {
			return ErrEmptyKey
		}
	}
	for _, list := range [][]Op{t.Then, t.Else} {
		for i := range list {
			if err := validateOp(&list[i], maxOps-longest, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateOp checks one op of a txn at depth (or of none, at 0).
func validateOp(op *Op, maxOps, depth int) error {
	n := 0
	for _, set := range []bool{op.Range != nil, op.Put != nil, op.Delete != nil, op.Txn != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return ErrInvalidOp
	}
	switch {
	case op.Range != nil:
		return validateRange(op.Range)
	case op.Put != nil:
		return validatePut(op.Put)
	case op.Delete != nil:
		if len(op.Delete.Key) == 0 {
			return ErrEmptyKey
		}
		return nil
	}
	return validateTxn(op.Txn, maxOps, depth+1)
}

// txnPlan is a txn with every compare evaluated: the branch that will run and,
// for each nested txn in it, that txn's plan.
type txnPlan struct {
	succeeded bool
	ops       []Op
	nested    []*txnPlan // aligned with ops; nil except for nested txns
}

func (s *Store) plan(t *TxnRequest) *txnPlan {
	p := &txnPlan{succeeded: true}
	for i := range t.Compares {
		if !s.compare(&t.Compares[i]) {
			p.succeeded = false
			break
		}
	}
	p.ops = t.Then
	if !p.succeeded {
		p.ops = t.Else
	}
	for i := range p.ops {
		if p.ops[i].Txn != nil {
			if p.nested == nil {
				p.nested = make([]*txnPlan, len(p.ops))
			}
			p.nested[i] = s.plan(p.ops[i].Txn)
		}
	}
	return p
}

// compare evaluates c against the current store (rule 11): on a missing key
// or an empty range a VALUE compare fails and other targets compare against
// zero; on a range every key must satisfy it.
func (s *Store) compare(c *Compare) bool {
	found, holds := false, true
	s.scan(newKeyRange(c.Key, c.End), func(it *keyItem) bool {
		v, ok := it.latest()
		if !ok {
			return true
		}
		found = true
		holds = compareVersion(c, v)
		return holds
	})
	if !found {
		return c.Target != CompareValue && compareVersion(c, fullVersion{version: &version{}})
	}
	return holds
}

func compareVersion(c *Compare, v fullVersion) bool {
	var order int
	switch c.Target {
	case CompareValue:
		order = bytes.Compare(v.value(), c.Value)
	case CompareVersion:
		order = cmp.Compare(v.ver, c.Number)
	case CompareCreate:
		order = cmp.Compare(v.create, c.Number)
	case CompareMod:
		order = cmp.Compare(v.main, c.Number)
	case CompareLease:
		order = cmp.Compare(v.lease, c.Number)
	default:
		return false
	}
	switch c.Result {
	case CompareEqual:
		return order == 0
	case CompareGreater:
		return order > 0
	case CompareLess:
		return order < 0
	case CompareNotEqual:
		return order != 0
	}
	return false
}

// checkPath runs the store checks of every op on the plan's path, in op
// order, against the store before the txn (rule 13): a put's lease and
// ignore-* key, a range's revision.
func (s *Store) checkPath(p *txnPlan) error {
	for i := range p.ops {
		var err error
		switch op := &p.ops[i]; {
		case op.Put != nil:
			err = s.checkPut(op.Put)
		case op.Range != nil:
			_, err = s.readRevision(op.Range.Revision, s.rev)
		case op.Txn != nil:
			err = s.checkPath(p.nested[i])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// exec applies a checked plan. Reads see the txn's earlier writes.
func (w *writer) exec(p *txnPlan) *TxnResult {
	res := &TxnResult{Succeeded: p.succeeded, Results: make([]OpResult, len(p.ops))}
	for i := range p.ops {
		switch op := &p.ops[i]; {
		case op.Range != nil:
			rev := op.Range.Revision
			if rev <= 0 {
				rev = w.current() // rule 7, kvstore: negative reads current inside a txn too
			}
			res.Results[i].Range = w.s.rangeAt(op.Range, rev, w.current())
		case op.Put != nil:
			res.Results[i].Put = w.put(op.Put)
		case op.Delete != nil:
			res.Results[i].Delete = w.deleteRange(op.Delete)
		case op.Txn != nil:
			res.Results[i].Txn = w.exec(p.nested[i]) // nested revision stays 0 (rule 14)
		}
	}
	return res
}
