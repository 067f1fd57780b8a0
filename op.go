package kvstore

import (
	"fmt"

	"github.com/kvstore/kvstore/mvcc"
)

// The op model: what a Put, Get, Delete or Watch call, or an Op of a Txn,
// asks for. Three names, three things:
//
//   - OpOption is what a caller passes (WithPrefix, WithRev, ...): a value
//     naming one option and its arguments, which sets a field of an
//     opSettings.
//   - opSettings is the set of option values one call or Op collected,
//     before anything checks them.
//   - Op is a Txn operation (OpGet, OpPut, OpDelete, OpTxn): a request kind,
//     its key and value, and its opSettings. Put, Get and Delete build one
//     too, so one path turns every request into mvcc's.
//
// mvcc.Op is the store's request, built from an Op by mvccOp once
// opOptionTable has accepted its settings. Watch checks its settings with
// the same table (the requestWatch column) and builds a watch.Request.

// OpOption modifies a Put, Get, Delete, Watch or an Op, as clientv3's
// OpOptions do; the With functions below make them. An option that does not
// apply to the call, or the zero OpOption, is ErrInvalidOpOption. An
// OpOption is a small value: applying options allocates nothing.
type OpOption struct {
	bit   optionBit // which option; 0 for the zero OpOption
	n, m  int64     // its numbers (WithRev's revision, WithSort's target and order...)
	bytes []byte    // WithRange's end
}

// opSettings holds the values a request's OpOptions set.
type opSettings struct {
	// key is the request's key, "\x00" for an empty key with WithPrefix
	// or WithFromKey (every key), as in clientv3.
	key          []byte
	end          []byte
	prefix       bool
	fromKey      bool
	rev          int64
	limit        int64
	sortOrder    SortOrder
	sortTarget   SortTarget
	keysOnly     bool
	countOnly    bool
	serializable bool
	prevKV       bool
	lease        int64
	ignoreValue  bool
	ignoreLease  bool
	minMod       int64
	maxMod       int64
	minCreate    int64
	maxCreate    int64

	filterPut      bool
	filterDelete   bool
	progressNotify bool
	createdNotify  bool

	// zeroOption is set by an OpOption{} among the options.
	zeroOption bool
}

// newOpSettings applies opts for a request on key and derives the range's
// end from WithPrefix or WithFromKey.
func newOpSettings(key []byte, opts []OpOption) opSettings {
	s := opSettings{key: key}
	if len(opts) > 0 {
		s = applyOpOptions(s, opts)
	}
	switch {
	case (s.prefix || s.fromKey) && len(key) == 0:
		s.key, s.end = []byte{0}, []byte{0}
	case s.prefix:
		s.end = mvcc.PrefixEnd(key)
	case s.fromKey:
		s.end = []byte{0}
	}
	return s
}

// applyOpOptions returns s with opts applied. It is apart from
// newOpSettings so that a request without options runs no loop at all.
func applyOpOptions(s opSettings, opts []OpOption) opSettings {
	for _, o := range opts {
		s.apply(o)
	}
	return s
}

// apply sets the field o stands for.
func (s *opSettings) apply(o OpOption) {
	switch o.bit {
	case optRange:
		s.end = o.bytes
	case optPrefix:
		s.prefix = true
	case optFromKey:
		s.fromKey = true
	case optRev:
		s.rev = o.n
	case optLimit:
		s.limit = o.n
	case optSort:
		s.sortTarget, s.sortOrder = SortTarget(o.n), SortOrder(o.m)
	case optKeysOnly:
		s.keysOnly = true
	case optCountOnly:
		s.countOnly = true
	case optSerializable:
		s.serializable = true
	case optModRange:
		s.minMod, s.maxMod = o.n, o.m
	case optCreateRange:
		s.minCreate, s.maxCreate = o.n, o.m
	case optPrevKV:
		s.prevKV = true
	case optFilterPut:
		s.filterPut = true
	case optFilterDelete:
		s.filterDelete = true
	case optProgressNotify:
		s.progressNotify = true
	case optCreatedNotify:
		s.createdNotify = true
	case optLease:
		s.lease = o.n
	case optIgnoreValue:
		s.ignoreValue = true
	case optIgnoreLease:
		s.ignoreLease = true
	default:
		s.zeroOption = true
	}
}

// Range options: Get, Delete and Watch.

// WithRange selects the keys in [key, end).
func WithRange(end []byte) OpOption { return OpOption{bit: optRange, bytes: end} }

// WithPrefix selects every key starting with key.
func WithPrefix() OpOption { return OpOption{bit: optPrefix} }

// WithFromKey selects every key >= key.
func WithFromKey() OpOption { return OpOption{bit: optFromKey} }

// Read options: Get (WithRev also Watch, as its start revision).

// WithRev reads at a past revision.
func WithRev(rev int64) OpOption { return OpOption{bit: optRev, n: rev} }

// WithLimit caps the number of keys a Get returns.
func WithLimit(n int64) OpOption { return OpOption{bit: optLimit, n: n} }

// SortTarget is the field WithSort sorts a Get's keys by.
type SortTarget = mvcc.SortTarget

// Sort targets.
const (
	SortByKey            SortTarget = mvcc.SortByKey
	SortByVersion        SortTarget = mvcc.SortByVersion
	SortByCreateRevision SortTarget = mvcc.SortByCreateRevision
	SortByModRevision    SortTarget = mvcc.SortByModRevision
	SortByValue          SortTarget = mvcc.SortByValue
)

// SortOrder is the order WithSort sorts a Get's keys in.
type SortOrder = mvcc.SortOrder

// Sort orders. SortNone with a target other than SortByKey sorts
// ascending, as etcd does.
const (
	SortNone    SortOrder = mvcc.SortNone
	SortAscend  SortOrder = mvcc.SortAscend
	SortDescend SortOrder = mvcc.SortDescend
)

// WithSort sorts a Get's keys by target in order; an unknown target or
// order is ErrInvalidSortOption.
func WithSort(target SortTarget, order SortOrder) OpOption {
	return OpOption{bit: optSort, n: int64(target), m: int64(order)}
}

// WithKeysOnly drops values (and, as etcd v3.7, leases unless sorting by
// value) from a Get.
func WithKeysOnly() OpOption { return OpOption{bit: optKeysOnly} }

// WithCountOnly returns only the count of a Get.
func WithCountOnly() OpOption { return OpOption{bit: optCountOnly} }

// WithModRevisionRange keeps keys whose mod revision lies in [min, max]; 0
// leaves a bound open.
func WithModRevisionRange(min, max int64) OpOption {
	return OpOption{bit: optModRange, n: min, m: max}
}

// WithCreateRevisionRange keeps keys whose create revision lies in
// [min, max]; 0 leaves a bound open.
func WithCreateRevisionRange(min, max int64) OpOption {
	return OpOption{bit: optCreateRange, n: min, m: max}
}

// WithSerializable makes a Get read this node's applied state with no
// network round trip; it may lag behind the cluster.
func WithSerializable() OpOption { return OpOption{bit: optSerializable} }

// Write options: Put (WithPrevKV also Delete and Watch).

// WithPrevKV returns the previous key-value of a Put, or the deleted ones of
// a Delete; on a Watch, each event's key before it.
func WithPrevKV() OpOption { return OpOption{bit: optPrevKV} }

// WithLease attaches a Put's key to a lease.
func WithLease(id int64) OpOption { return OpOption{bit: optLease, n: id} }

// WithIgnoreValue keeps the key's current value on Put.
func WithIgnoreValue() OpOption { return OpOption{bit: optIgnoreValue} }

// WithIgnoreLease keeps the key's current lease on Put.
func WithIgnoreLease() OpOption { return OpOption{bit: optIgnoreLease} }

// Watch options (besides WithRange, WithPrefix, WithFromKey, WithRev for
// the start revision, and WithPrevKV).

// WithFilterPut drops PUT events from a watch.
func WithFilterPut() OpOption { return OpOption{bit: optFilterPut} }

// WithFilterDelete drops DELETE events from a watch.
func WithFilterDelete() OpOption { return OpOption{bit: optFilterDelete} }

// WithProgressNotify asks for a progress notification whenever the watch
// received nothing for the node's WithWatchProgressInterval.
func WithProgressNotify() OpOption { return OpOption{bit: optProgressNotify} }

// WithCreatedNotify asks for a first response with Created set.
func WithCreatedNotify() OpOption { return OpOption{bit: optCreatedNotify} }

// requestKind is what a set of OpOptions is for: one of the four Op kinds,
// or a Watch. The kinds are bits, so that opOptionTable can list the kinds
// an option applies to as one mask.
type requestKind uint8

const (
	requestGet requestKind = 1 << iota
	requestPut
	requestDelete
	requestTxn
	requestWatch // not an Op: Node.Watch checks its options with the same table
)

func (k requestKind) String() string {
	switch k {
	case requestGet:
		return "OpGet"
	case requestPut:
		return "OpPut"
	case requestDelete:
		return "OpDelete"
	case requestTxn:
		return "OpTxn"
	case requestWatch:
		return "Watch"
	}
	return "the zero Op"
}

// opOptionTable names every OpOption and the request kinds it applies to.
// clientv3 panics on range, read and filter options given to OpPut or
// OpDelete, and on WithLease given to OpDelete; the remaining mismatches
// (WithLease, WithPrevKV or WithIgnore* on OpGet, WithKeysOnly on OpPut or
// OpDelete, WithIgnore* on OpDelete) it silently drops. kvstore rejects all
// of them alike, since an option that does nothing is a bug in the caller.
var opOptionTable = []struct {
	name  string
	bit   optionBit
	kinds requestKind
}{
	{"WithRange", optRange, requestGet | requestDelete | requestWatch},
	{"WithPrefix", optPrefix, requestGet | requestDelete | requestWatch},
	{"WithFromKey", optFromKey, requestGet | requestDelete | requestWatch},
	{"WithRev", optRev, requestGet | requestWatch},
	{"WithLimit", optLimit, requestGet},
	{"WithSort", optSort, requestGet},
	{"WithKeysOnly", optKeysOnly, requestGet},
	{"WithCountOnly", optCountOnly, requestGet},
	{"WithSerializable", optSerializable, requestGet},
	{"WithModRevisionRange", optModRange, requestGet},
	{"WithCreateRevisionRange", optCreateRange, requestGet},
	{"WithPrevKV", optPrevKV, requestPut | requestDelete | requestWatch},
	{"WithFilterPut", optFilterPut, requestWatch},
	{"WithFilterDelete", optFilterDelete, requestWatch},
	{"WithProgressNotify", optProgressNotify, requestWatch},
	{"WithCreatedNotify", optCreatedNotify, requestWatch},
	{"WithLease", optLease, requestPut},
	{"WithIgnoreValue", optIgnoreValue, requestPut},
	{"WithIgnoreLease", optIgnoreLease, requestPut},
}

// optionBit is one OpOption in a set of them (opSettings.options).
type optionBit uint32

const (
	optRange optionBit = 1 << iota
	optPrefix
	optFromKey
	optRev
	optLimit
	optSort
	optKeysOnly
	optCountOnly
	optSerializable
	optModRange
	optCreateRange
	optPrevKV
	optFilterPut
	optFilterDelete
	optProgressNotify
	optCreatedNotify
	optLease
	optIgnoreValue
	optIgnoreLease
)

// options returns the set of OpOptions s holds. It reads fields directly,
// not through a function per option, so that checking a request's
// settings does not move them to the heap.
func (s *opSettings) options() optionBit {
	var set optionBit
	flag := func(on bool, bit optionBit) {
		if on {
			set |= bit
		}
	}
	flag(s.end != nil && !s.prefix && !s.fromKey, optRange)
	flag(s.prefix, optPrefix)
	flag(s.fromKey, optFromKey)
	flag(s.rev != 0, optRev)
	flag(s.limit != 0, optLimit)
	flag(s.sortOrder != 0 || s.sortTarget != 0, optSort)
	flag(s.keysOnly, optKeysOnly)
	flag(s.countOnly, optCountOnly)
	flag(s.serializable, optSerializable)
	flag(s.minMod != 0 || s.maxMod != 0, optModRange)
	flag(s.minCreate != 0 || s.maxCreate != 0, optCreateRange)
	flag(s.prevKV, optPrevKV)
	flag(s.filterPut, optFilterPut)
	flag(s.filterDelete, optFilterDelete)
	flag(s.progressNotify, optProgressNotify)
	flag(s.createdNotify, optCreatedNotify)
	flag(s.lease != 0, optLease)
	flag(s.ignoreValue, optIgnoreValue)
	flag(s.ignoreLease, optIgnoreLease)
	return set
}

// check returns ErrInvalidOpOption, naming the option, if s holds an option
// that does not apply to kind.
func (s *opSettings) check(kind requestKind) error {
	if s.zeroOption {
		return fmt.Errorf("%w: the zero OpOption on %s (make options with the With functions)", ErrInvalidOpOption, kind)
	}
	if s.prefix && s.fromKey {
		return fmt.Errorf("%w: WithPrefix and WithFromKey together on %s", ErrInvalidOpOption, kind)
	}
	set := s.options()
	if set == 0 {
		return nil
	}
	for _, opt := range opOptionTable {
		if set&opt.bit != 0 && opt.kinds&kind == 0 {
			return fmt.Errorf("%w: %s on %s", ErrInvalidOpOption, opt.name, kind)
		}
	}
	return nil
}

// Op is one operation of a Txn branch, as clientv3.Op, built by OpGet,
// OpPut, OpDelete or OpTxn; the zero Op is invalid (ErrInvalidOp at
// Commit). An Op is a value; its byte slices are read, not copied, and must
// not be modified until Commit returns.
type Op struct {
	kind       requestKind
	key, value []byte
	settings   opSettings
	err        error // an option that does not apply
	cmps       []Cmp
	then, els  []Op
}

// OpGet reads key, or a range with WithRange, WithPrefix or WithFromKey.
// Inside a txn it sees the txn's earlier writes (SEMANTICS.md rule 12).
// Put-only options (WithLease, WithPrevKV, WithIgnoreValue,
// WithIgnoreLease) are ErrInvalidOpOption at Commit.
func OpGet(key []byte, opts ...OpOption) Op { return newOp(requestGet, key, nil, opts) }

// OpPut writes key. Range, read and filter options (WithRange, WithPrefix,
// WithFromKey, WithRev, WithLimit, WithSort, WithKeysOnly, WithCountOnly,
// WithSerializable and the revision filters) are ErrInvalidOpOption at
// Commit.
func OpPut(key, value []byte, opts ...OpOption) Op { return newOp(requestPut, key, value, opts) }

// OpDelete deletes key, or a range with WithRange, WithPrefix or
// WithFromKey; WithPrevKV returns the deleted keys. Other options are
// ErrInvalidOpOption at Commit.
func OpDelete(key []byte, opts ...OpOption) Op { return newOp(requestDelete, key, nil, opts) }

// OpTxn nests a txn: its compares, like every compare of the enclosing txn,
// are evaluated against the store as it was before the outermost txn
// (SEMANTICS.md rule 12). Its response is OpResponse.Txn, whose header
// revision is 0 (rule 14).
func OpTxn(cmps []Cmp, then, els []Op) Op {
	return Op{kind: requestTxn, cmps: cmps, then: then, els: els}
}

func newOp(kind requestKind, key, value []byte, opts []OpOption) Op {
	o := Op{kind: kind, key: key, value: value, settings: newOpSettings(key, opts)}
	if len(opts) > 0 { // without options none is set
		o.err = o.settings.check(kind)
	}
	return o
}

// mvccOp returns the store's request for o, or the first problem found in
// it.
func (o *Op) mvccOp() (mvcc.Op, error) {
	if o.err != nil {
		return mvcc.Op{}, o.err
	}
	s := &o.settings
	switch o.kind {
	case requestGet:
		r := s.rangeRequest()
		return mvcc.Op{Range: &r}, nil
	case requestPut:
		return mvcc.Op{Put: &mvcc.PutRequest{
			Key: o.key, Value: o.value, Lease: s.lease, PrevKV: s.prevKV, IgnoreValue: s.ignoreValue, IgnoreLease: s.ignoreLease,
		}}, nil
	case requestDelete:
		return mvcc.Op{Delete: &mvcc.DeleteRequest{Key: s.key, End: s.end, PrevKV: s.prevKV}}, nil
	case requestTxn:
		t, err := mvccTxn(o.cmps, o.then, o.els)
		return mvcc.Op{Txn: t}, err
	}
	return mvcc.Op{}, fmt.Errorf("%w: %s", ErrInvalidOp, o.kind)
}

// rangeRequest is the store's request for a Get with settings s.
func (s *opSettings) rangeRequest() mvcc.RangeRequest {
	return mvcc.RangeRequest{
		Key: s.key, End: s.end, Revision: s.rev, Limit: s.limit, SortOrder: s.sortOrder, SortTarget: s.sortTarget,
		KeysOnly: s.keysOnly, CountOnly: s.countOnly, MinModRevision: s.minMod, MaxModRevision: s.maxMod,
		MinCreateRevision: s.minCreate, MaxCreateRevision: s.maxCreate,
	}
}

// mvccTxn builds the store's request for a txn, nested ones included.
func mvccTxn(cmps []Cmp, then, els []Op) (*mvcc.TxnRequest, error) {
	t := &mvcc.TxnRequest{}
	for _, c := range cmps {
		mc, err := c.mvccCompare()
		if err != nil {
			return nil, err
		}
		t.Compares = append(t.Compares, mc)
	}
	var err error
	if t.Then, err = mvccOps(then); err != nil {
		return nil, err
	}
	if t.Else, err = mvccOps(els); err != nil {
		return nil, err
	}
	return t, nil
}

func mvccOps(ops []Op) ([]mvcc.Op, error) {
	out := make([]mvcc.Op, 0, len(ops))
	for i := range ops {
		mo, err := ops[i].mvccOp()
		if err != nil {
			return nil, err
		}
		out = append(out, mo)
	}
	return out, nil
}
