package kvstore

import (
	"context"
	"errors"
	"time"

	"github.com/kvstore/kvstore/mvcc"
)

// OpOption modifies a Put, Get or Delete, as clientv3's OpOptions do.
type OpOption func(*op)

type op struct {
	// key is the request's key, "\x00" for an empty key with WithPrefix
	// or WithFromKey (every key), as in clientv3.
	key          []byte
	end          []byte
	prefix       bool
	fromKey      bool
	rev          int64
	limit        int64
	sortOrder    mvcc.SortOrder
	sortTarget   mvcc.SortTarget
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
}

// WithRange selects the keys in [key, end).
func WithRange(end []byte) OpOption { return func(o *op) { o.end = end } }

// WithPrefix selects every key starting with key.
func WithPrefix() OpOption { return func(o *op) { o.prefix = true } }

// WithFromKey selects every key >= key.
func WithFromKey() OpOption { return func(o *op) { o.fromKey = true } }

// WithRev reads at a past revision.
func WithRev(rev int64) OpOption { return func(o *op) { o.rev = rev } }

// WithLimit caps the number of keys a Get returns.
func WithLimit(n int64) OpOption { return func(o *op) { o.limit = n } }

// WithSort sorts a Get's keys.
func WithSort(target mvcc.SortTarget, order mvcc.SortOrder) OpOption {
	return func(o *op) { o.sortTarget, o.sortOrder = target, order }
}

// WithKeysOnly drops values (and, as etcd v3.7, leases unless sorting by
// value) from a Get.
func WithKeysOnly() OpOption { return func(o *op) { o.keysOnly = true } }

// WithCountOnly returns only the count of a Get.
func WithCountOnly() OpOption { return func(o *op) { o.countOnly = true } }

// WithModRevisionRange keeps keys whose mod revision lies in [min, max]; 0
// leaves a bound open.
func WithModRevisionRange(min, max int64) OpOption {
	return func(o *op) { o.minMod, o.maxMod = min, max }
}

// WithCreateRevisionRange keeps keys whose create revision lies in
// [min, max]; 0 leaves a bound open.
func WithCreateRevisionRange(min, max int64) OpOption {
	return func(o *op) { o.minCreate, o.maxCreate = min, max }
}

// WithSerializable makes a Get read this node's applied state with no
// network round trip; it may lag behind the cluster.
func WithSerializable() OpOption { return func(o *op) { o.serializable = true } }

// WithPrevKV returns the previous key-value of a Put, or the deleted ones of
// a Delete.
func WithPrevKV() OpOption { return func(o *op) { o.prevKV = true } }

// WithLease attaches a Put's key to a lease.
func WithLease(id int64) OpOption { return func(o *op) { o.lease = id } }

// WithIgnoreValue keeps the key's current value on Put.
func WithIgnoreValue() OpOption { return func(o *op) { o.ignoreValue = true } }

// WithIgnoreLease keeps the key's current lease on Put.
func WithIgnoreLease() OpOption { return func(o *op) { o.ignoreLease = true } }

func buildOp(key []byte, opts []OpOption) op {
	o := op{key: key}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case (o.prefix || o.fromKey) && len(key) == 0:
		o.key, o.end = []byte{0}, []byte{0}
	case o.prefix:
		o.end = mvcc.PrefixEnd(key)
	case o.fromKey:
		o.end = []byte{0}
	}
	return o
}

// PutResponse answers Put.
type PutResponse struct {
	Header Header
	// PrevKV is the key before the put, with WithPrevKV.
	PrevKV *KeyValue
}

// GetResponse answers Get.
type GetResponse struct {
	Header Header
	KVs    []KeyValue
	// Count is the number of keys in the range, before limit and filters.
	Count int64
	// More reports that the limit cut off keys.
	More bool
}

// DeleteResponse answers Delete.
type DeleteResponse struct {
	Header  Header
	Deleted int64
	// PrevKVs are the deleted keys, with WithPrevKV.
	PrevKVs []KeyValue
}

// Put writes key. It returns once the write is committed and applied on
// this node; a write whose ctx ends first may still commit. Options that do
// not apply to a put are ErrInvalidOpOption.
func (n *Node) Put(ctx context.Context, key, value []byte, opts ...OpOption) (*PutResponse, error) {
	o := OpPut(key, value, opts...)
	req, err := o.request()
	if err != nil {
		return nil, err
	}
	res, err := n.propose(ctx, &command{Kind: cmdPut, Put: wirePutOf(req.Put)})
	if err != nil {
		return nil, err
	}
	return &PutResponse{Header: n.header(res.Revision), PrevKV: res.Put.PrevKV}, nil
}

// Delete deletes key, or a range with WithRange, WithPrefix or WithFromKey,
// like Put in its guarantees.
func (n *Node) Delete(ctx context.Context, key []byte, opts ...OpOption) (*DeleteResponse, error) {
	o := OpDelete(key, opts...)
	req, err := o.request()
	if err != nil {
		return nil, err
	}
	res, err := n.propose(ctx, &command{Kind: cmdDelete, Delete: wireDeleteOf(req.Delete)})
	if err != nil {
		return nil, err
	}
	return &DeleteResponse{Header: n.header(res.Revision), Deleted: res.Delete.Deleted, PrevKVs: res.Delete.PrevKVs}, nil
}

// Get reads key, or a range. It is linearizable unless WithSerializable:
// it sees every write acknowledged by any member before it was called.
func (n *Node) Get(ctx context.Context, key []byte, opts ...OpOption) (*GetResponse, error) {
	defer n.warnIfSlow("range", time.Now())
	o := OpGet(key, opts...)
	req, err := o.request()
	if err != nil {
		return nil, err
	}
	if !o.opt.serializable {
		if err := n.readIndex(ctx); err != nil {
			return nil, err
		}
	}
	res, err := n.fsm.rangeKeys(req.Range)
	if err != nil {
		if errors.Is(err, mvcc.ErrClosed) {
			return nil, n.errClosed()
		}
		return nil, err
	}
	return &GetResponse{Header: n.header(res.Revision), KVs: res.KVs, Count: res.Count, More: res.More}, nil
}
