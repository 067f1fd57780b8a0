package concurrency

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kvstore/kvstore"
)

// Isolation is the isolation level of an STM, as etcd's.
type Isolation int

const (
	// SerializableSnapshot reads every key at the revision of the first
	// read, and commits only if no key read or written changed since:
	// serializable, and no write overwrites a change made after the
	// snapshot. The default, as in etcd.
	SerializableSnapshot Isolation = iota
	// Serializable reads every key at the revision of the first read, and
	// commits only if no key read changed since; keys written without
	// being read are not checked.
	Serializable
	// RepeatableReads reads each key at the latest revision when it is
	// first read, and commits only if none of them changed since: no lost
	// updates, but two reads may come from different revisions.
	RepeatableReads
	// ReadCommitted reads each key at the latest revision and commits
	// without checking anything: each read sees committed data, and that
	// is all. The writes are still applied atomically.
	ReadCommitted
)

func (i Isolation) String() string {
	switch i {
	case SerializableSnapshot:
		return "serializable-snapshot"
	case Serializable:
		return "serializable"
	case RepeatableReads:
		return "repeatable-reads"
	case ReadCommitted:
		return "read-committed"
	}
	return fmt.Sprintf("Isolation(%d)", int(i))
}

// DefaultSTMRetries is how many times NewSTM runs a conflicting
// transaction again, unless WithRetries says otherwise.
const DefaultSTMRetries = 100

// prefetchChunk is how many keys one prefetch txn reads, well within the
// default WithMaxTxnOps.
const prefetchChunk = 64

// STM is the view an STM function reads and writes through. Reads see the
// function's own earlier writes. Writes are buffered and committed together
// when the function returns nil. An STM is valid only inside the call of
// the function it was passed to, on that goroutine.
type STM interface {
	// Get returns key's value: nil if the key does not exist (or was
	// deleted by this transaction), a non-nil slice, possibly empty,
	// otherwise. Its error should be returned by the function; the
	// transaction fails with it (or, for a conflict found while reading,
	// is run again) even if it is not.
	Get(key string) ([]byte, error)
	// Rev returns the mod revision of key as read (0 if it does not
	// exist), ignoring this transaction's writes.
	Rev(key string) (int64, error)
	// Put buffers a write of key. Options are those of kvstore.OpPut
	// (WithLease, ...); one that does not apply fails the commit.
	Put(key string, val []byte, opts ...kvstore.OpOption)
	// Del buffers a delete of key.
	Del(key string)
}

// STMOption configures NewSTM.
type STMOption func(*stmConfig)

type stmConfig struct {
	isolation Isolation
	retries   int
	prefetch  []string
}

// WithIsolation sets the isolation level (default SerializableSnapshot).
func WithIsolation(i Isolation) STMOption { return func(c *stmConfig) { c.isolation = i } }

// WithRetries bounds how many times a conflicting transaction is run
// again (default DefaultSTMRetries; 0 runs it once).
func WithRetries(n int) STMOption { return func(c *stmConfig) { c.retries = n } }

// WithPrefetch reads keys in one round trip before the first run of the
// function. Later runs prefetch the keys the previous run read.
func WithPrefetch(keys ...string) STMOption {
	return func(c *stmConfig) { c.prefetch = append(c.prefetch, keys...) }
}

// errConflict marks a read that found its snapshot compacted away: the
// transaction is run again at a newer one.
var errConflict = errors.New("concurrency: stm: snapshot compacted, retrying")

// NewSTM runs apply as one transaction through node: apply reads and
// writes through its STM, and when it returns nil the writes are committed
// in one txn that holds only if what apply read is still current (per the
// isolation level). On a conflict apply runs again from scratch, at most
// WithRetries more times (then ErrTooManyConflicts); apply must therefore
// have no effects outside its STM. It returns the commit's response.
//
// A commit the leader refused before proposing it (a leadership transfer in
// progress) counts as a conflict. Nothing is written when apply returns an error (NewSTM returns it as
// is), when ctx ends before the commit, or on ErrTooManyConflicts. A commit
// that fails with kvstore.ErrOutcomeUnknown (a leader change) may have
// happened and is not run again, since running it again could apply its
// writes twice; the error is returned.
//
// Reads are linearizable; for the serializable levels the first read is,
// and the later ones read the same revision on node. Each run reads and
// writes at most the node's WithMaxTxnOps keys (each read key is a compare
// of the commit).
func NewSTM(ctx context.Context, node *kvstore.Node, apply func(STM) error, opts ...STMOption) (*kvstore.TxnResponse, error) {
	if node == nil {
		return nil, ErrNilNode
	}
	if apply == nil {
		return nil, fmt.Errorf("concurrency: stm: nil function")
	}
	cfg := stmConfig{retries: DefaultSTMRetries}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.isolation < SerializableSnapshot || cfg.isolation > ReadCommitted {
		return nil, fmt.Errorf("%w: %d", ErrInvalidIsolation, int(cfg.isolation))
	}
	if cfg.retries < 0 {
		return nil, fmt.Errorf("concurrency: stm: negative retries %d", cfg.retries)
	}
	prefetch := cfg.prefetch
	for range cfg.retries + 1 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := &stm{ctx: ctx, node: node, isolation: cfg.isolation,
			reads: make(map[string]*kvstore.KeyValue), writes: make(map[string]stmWrite)}
		err := s.prefetch(prefetch)
		if err == nil {
			err = apply(s)
			if s.err != nil && (err == nil || errors.Is(s.err, errConflict)) {
				err = s.err
			}
		}
		prefetch = s.readKeys()
		switch {
		case errors.Is(err, errConflict):
			continue
		case err != nil:
			return nil, err
		}
		resp, err := s.commit()
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return resp, nil
		}
	}
	return nil, fmt.Errorf("%w: %d runs", ErrTooManyConflicts, cfg.retries+1)
}

// stm is one run of an STM function.
type stm struct {
	ctx       context.Context
	node      *kvstore.Node
	isolation Isolation
	rev       int64                        // the snapshot revision of serializable levels, 0 before the first read
	reads     map[string]*kvstore.KeyValue // nil value: the key did not exist
	writes    map[string]stmWrite
	err       error // the first failed read or bad write
}

type stmWrite struct {
	value  []byte
	delete bool
	opts   []kvstore.OpOption
}

func (s *stm) serializable() bool {
	return s.isolation == Serializable || s.isolation == SerializableSnapshot
}

func (s *stm) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	return err
}

// readOpts are the options of a read after the first.
func (s *stm) readOpts() []kvstore.OpOption {
	if s.serializable() && s.rev != 0 {
		return []kvstore.OpOption{kvstore.WithRev(s.rev), kvstore.WithSerializable()}
	}
	return nil
}

// fetch reads key once per run.
func (s *stm) fetch(key string) (*kvstore.KeyValue, error) {
	if key == "" {
		return nil, s.fail(kvstore.ErrEmptyKey)
	}
	if kv, ok := s.reads[key]; ok {
		return kv, nil
	}
	resp, err := s.node.Get(s.ctx, []byte(key), s.readOpts()...)
	if err != nil {
		if errors.Is(err, kvstore.ErrCompacted) {
			err = errConflict
		}
		return nil, s.fail(err)
	}
	if s.serializable() && s.rev == 0 {
		s.rev = resp.Header.Revision
	}
	s.record(key, resp.KVs)
	return s.reads[key], nil
}

func (s *stm) record(key string, kvs []kvstore.KeyValue) {
	if len(kvs) == 0 {
		s.reads[key] = nil
		return
	}
	kv := kvs[0]
	s.reads[key] = &kv
}

// prefetch reads keys in as few txns as the txn limits allow, the first
// one setting the snapshot revision.
func (s *stm) prefetch(keys []string) error {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "" })
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for chunk := range slices.Chunk(keys, prefetchChunk) {
		ops := make([]kvstore.Op, len(chunk))
		for i, k := range chunk {
			ops[i] = kvstore.OpGet([]byte(k), s.readOpts()...)
		}
		resp, err := s.node.Txn(s.ctx).Then(ops...).Commit()
		if err != nil {
			if errors.Is(err, kvstore.ErrCompacted) {
				return errConflict
			}
			return err
		}
		if s.serializable() && s.rev == 0 {
			s.rev = resp.Header.Revision
		}
		for i, k := range chunk {
			s.record(k, resp.Responses[i].Get.KVs)
		}
	}
	return nil
}

func (s *stm) readKeys() []string {
	keys := make([]string, 0, len(s.reads))
	for k := range s.reads {
		keys = append(keys, k)
	}
	return keys
}

func (s *stm) Get(key string) ([]byte, error) {
	if w, ok := s.writes[key]; ok {
		if w.delete {
			return nil, nil
		}
		return w.value, nil
	}
	kv, err := s.fetch(key)
	if err != nil || kv == nil {
		return nil, err
	}
	if kv.Value == nil {
		return []byte{}, nil
	}
	return kv.Value, nil
}

func (s *stm) Rev(key string) (int64, error) {
	kv, err := s.fetch(key)
	if err != nil || kv == nil {
		return 0, err
	}
	return kv.ModRevision, nil
}

func (s *stm) Put(key string, val []byte, opts ...kvstore.OpOption) {
	if key == "" {
		s.fail(kvstore.ErrEmptyKey)
		return
	}
	if val == nil {
		val = []byte{}
	}
	s.writes[key] = stmWrite{value: val, opts: opts}
}

func (s *stm) Del(key string) {
	if key == "" {
		s.fail(kvstore.ErrEmptyKey)
		return
	}
	s.writes[key] = stmWrite{delete: true}
}

// commit proposes the writes under the compares of the isolation level.
// Each compare is an equality on the key's mod revision as read (0 for a
// key that did not exist), so a key deleted since the read is a conflict
// too (etcd's STM compares "mod revision < read + 1", which a delete,
// resetting it to 0, passes).
func (s *stm) commit() (*kvstore.TxnResponse, error) {
	keys := make([]string, 0, len(s.writes))
	for k := range s.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if s.isolation == SerializableSnapshot && s.rev != 0 {
		// Blind writes must not overwrite a change made after the
		// snapshot: read their keys at it (locally) to compare them too.
		for _, k := range keys {
			if _, err := s.fetch(k); err != nil {
				if errors.Is(err, errConflict) {
					return &kvstore.TxnResponse{}, nil
				}
				return nil, err
			}
		}
	}
	var cmps []kvstore.Cmp
	if s.isolation != ReadCommitted {
		read := s.readKeys()
		slices.Sort(read)
		for _, k := range read {
			var rev int64
			if kv := s.reads[k]; kv != nil {
				rev = kv.ModRevision
			}
			cmps = append(cmps, kvstore.Compare(kvstore.ModRevision([]byte(k)), "=", rev))
		}
	}
	ops := make([]kvstore.Op, 0, len(keys))
	for _, k := range keys {
		w := s.writes[k]
		if w.delete {
			ops = append(ops, kvstore.OpDelete([]byte(k)))
		} else {
			ops = append(ops, kvstore.OpPut([]byte(k), w.value, w.opts...))
		}
	}
	return s.node.Txn(s.ctx).If(cmps...).Then(ops...).Commit()
}
