package kvstore

import (
	"fmt"

	"github.com/kvstore/kvstore/mvcc"
)

// Op is one operation of a Txn branch, as clientv3.Op, built by OpGet,
// OpPut, OpDelete or OpTxn; the zero Op is invalid (ErrInvalidOp at
// Commit). An Op is a value; its byte slices are read, not copied, and must
// not be modified until Commit returns.
type Op struct {
	kind       opKind
	key, value []byte
	opt        op
	err        error // an option that does not apply
	cmps       []Cmp
	then, els  []Op
}

type opKind uint8

const (
	kindGet opKind = 1 << iota
	kindPut
	kindDelete
	kindTxn
	kindWatch // not an Op: Node.Watch checks its options with the same table
)

func (k opKind) String() string {
	switch k {
	case kindGet:
		return "OpGet"
	case kindPut:
		return "OpPut"
	case kindDelete:
		return "OpDelete"
	case kindTxn:
		return "OpTxn"
	case kindWatch:
		return "Watch"
	}
	return "the zero Op"
}

// OpGet reads key, or a range with WithRange, WithPrefix or WithFromKey.
// Inside a txn it sees the txn's earlier writes (SEMANTICS.md rule 12).
// Put-only options (WithLease, WithPrevKV, WithIgnoreValue,
// WithIgnoreLease) are ErrInvalidOpOption at Commit.
func OpGet(key []byte, opts ...OpOption) Op { return newOp(kindGet, key, nil, opts) }

// OpPut writes key. Range, read and filter options (WithRange, WithPrefix,
// WithFromKey, WithRev, WithLimit, WithSort, WithKeysOnly, WithCountOnly,
// WithSerializable and the revision filters) are ErrInvalidOpOption at
// Commit.
func OpPut(key, value []byte, opts ...OpOption) Op { return newOp(kindPut, key, value, opts) }

// OpDelete deletes key, or a range with WithRange, WithPrefix or
// WithFromKey; WithPrevKV returns the deleted keys. Other options are
// ErrInvalidOpOption at Commit.
func OpDelete(key []byte, opts ...OpOption) Op { return newOp(kindDelete, key, nil, opts) }

// OpTxn nests a txn: its compares, like every compare of the enclosing txn,
// are evaluated against the store as it was before the outermost txn
// (SEMANTICS.md rule 12). Its response is OpResponse.Txn, whose header
// revision is 0 (rule 14).
func OpTxn(cmps []Cmp, then, els []Op) Op {
	return Op{kind: kindTxn, cmps: cmps, then: then, els: els}
}

func newOp(kind opKind, key, value []byte, opts []OpOption) Op {
	o := Op{kind: kind, key: key, value: value, opt: buildOp(key, opts)}
	o.err = checkOptions(kind, &o.opt)
	return o
}

// opOptions names every OpOption and the op kinds it applies to. clientv3
// panics on range, read and filter options given to OpPut or OpDelete, and
// on WithLease given to OpDelete; the remaining mismatches (WithLease,
// WithPrevKV or WithIgnore* on OpGet, WithKeysOnly on OpPut or OpDelete,
// WithIgnore* on OpDelete) it silently drops. kvstore rejects all of them
// alike, since an option that does nothing is a bug in the caller.
var opOptions = []struct {
	name  string
	set   func(o *op) bool
	kinds opKind
}{
	{"WithRange", func(o *op) bool { return o.end != nil && !o.prefix && !o.fromKey }, kindGet | kindDelete | kindWatch},
	{"WithPrefix", func(o *op) bool { return o.prefix }, kindGet | kindDelete | kindWatch},
	{"WithFromKey", func(o *op) bool { return o.fromKey }, kindGet | kindDelete | kindWatch},
	{"WithRev", func(o *op) bool { return o.rev != 0 }, kindGet | kindWatch},
	{"WithLimit", func(o *op) bool { return o.limit != 0 }, kindGet},
	{"WithSort", func(o *op) bool { return o.sortOrder != 0 || o.sortTarget != 0 }, kindGet},
	{"WithKeysOnly", func(o *op) bool { return o.keysOnly }, kindGet},
	{"WithCountOnly", func(o *op) bool { return o.countOnly }, kindGet},
	{"WithSerializable", func(o *op) bool { return o.serializable }, kindGet},
	{"WithModRevisionRange", func(o *op) bool { return o.minMod != 0 || o.maxMod != 0 }, kindGet},
	{"WithCreateRevisionRange", func(o *op) bool { return o.minCreate != 0 || o.maxCreate != 0 }, kindGet},
	{"WithPrevKV", func(o *op) bool { return o.prevKV }, kindPut | kindDelete | kindWatch},
	{"WithFilterPut", func(o *op) bool { return o.filterPut }, kindWatch},
	{"WithFilterDelete", func(o *op) bool { return o.filterDelete }, kindWatch},
	{"WithProgressNotify", func(o *op) bool { return o.progressNotify }, kindWatch},
	{"WithCreatedNotify", func(o *op) bool { return o.createdNotify }, kindWatch},
	{"WithLease", func(o *op) bool { return o.lease != 0 }, kindPut},
	{"WithIgnoreValue", func(o *op) bool { return o.ignoreValue }, kindPut},
	{"WithIgnoreLease", func(o *op) bool { return o.ignoreLease }, kindPut},
}

func checkOptions(kind opKind, o *op) error {
	if o.prefix && o.fromKey {
		return fmt.Errorf("%w: WithPrefix and WithFromKey together on %s", ErrInvalidOpOption, kind)
	}
	for _, opt := range opOptions {
		if opt.set(o) && opt.kinds&kind == 0 {
			return fmt.Errorf("%w: %s on %s", ErrInvalidOpOption, opt.name, kind)
		}
	}
	return nil
}

// request returns the mvcc op, or the first problem found in it.
func (o *Op) request() (mvcc.Op, error) {
	if o.err != nil {
		return mvcc.Op{}, o.err
	}
	p := &o.opt
	switch o.kind {
	case kindGet:
		return mvcc.Op{Range: &mvcc.RangeRequest{
			Key: p.key, End: p.end, Revision: p.rev, Limit: p.limit, SortOrder: p.sortOrder, SortTarget: p.sortTarget,
			KeysOnly: p.keysOnly, CountOnly: p.countOnly, MinModRevision: p.minMod, MaxModRevision: p.maxMod,
			MinCreateRevision: p.minCreate, MaxCreateRevision: p.maxCreate,
		}}, nil
	case kindPut:
		return mvcc.Op{Put: &mvcc.PutRequest{
			Key: o.key, Value: o.value, Lease: p.lease, PrevKV: p.prevKV, IgnoreValue: p.ignoreValue, IgnoreLease: p.ignoreLease,
		}}, nil
	case kindDelete:
		return mvcc.Op{Delete: &mvcc.DeleteRequest{Key: p.key, End: p.end, PrevKV: p.prevKV}}, nil
	case kindTxn:
		t, err := txnRequest(o.cmps, o.then, o.els)
		return mvcc.Op{Txn: t}, err
	}
	return mvcc.Op{}, fmt.Errorf("%w: %s", ErrInvalidOp, o.kind)
}

// txnRequest builds the mvcc request of a txn, nested ones included.
func txnRequest(cmps []Cmp, then, els []Op) (*mvcc.TxnRequest, error) {
	t := &mvcc.TxnRequest{}
	for _, c := range cmps {
		mc, err := c.request()
		if err != nil {
			return nil, err
		}
		t.Compares = append(t.Compares, mc)
	}
	var err error
	if t.Then, err = opRequests(then); err != nil {
		return nil, err
	}
	if t.Else, err = opRequests(els); err != nil {
		return nil, err
	}
	return t, nil
}

func opRequests(ops []Op) ([]mvcc.Op, error) {
	out := make([]mvcc.Op, 0, len(ops))
	for i := range ops {
		mo, err := ops[i].request()
		if err != nil {
			return nil, err
		}
		out = append(out, mo)
	}
	return out, nil
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
		case kindPut, kindDelete:
			s.writes = true
		case kindGet:
			s.gets++
			if o.opt.serializable {
				s.serializableGets++
			}
		case kindTxn:
			s.add(o.then)
			s.add(o.els)
		}
	}
}

func (s *txnShape) serializable() bool {
	return !s.writes && s.gets > 0 && s.gets == s.serializableGets
}
