package mvcc

import (
	"fmt"
	"sync"

	"github.com/tidwall/btree"
)

// MaxValueSize is the largest value the store holds (4 GiB - 1); the
// replicated node's request limit is far lower.
const MaxValueSize = 1<<32 - 1

// DefaultMaxTxnOps is etcd's default limit on each list of a txn.
const DefaultMaxTxnOps = 128

// Config configures a Store. Every member of a replicated group must use the
// same Config, since it decides which requests apply.
type Config struct {
	// MaxTxnOps limits the length of each list in a txn (compares, then,
	// else); 0 means DefaultMaxTxnOps.
	MaxTxnOps int
	// CheckLease is called, under the store's write lock, for every put that
	// names a lease; a non-nil error rejects the write and is returned as
	// is. Nil means no lease exists: such puts fail with ErrLeaseNotFound.
	// It must be deterministic and must not call back into the store.
	CheckLease func(id int64) error
}

// Store is an in-memory multi-version key-value store with etcd v3
// semantics. It is safe for concurrent use: write transactions are
// serialized, reads run concurrently with each other and wait only for the
// write transaction in progress.
type Store struct {
	cfg Config

	// mu guards every field below. Writers hold it exclusively for one whole
	// write transaction; readers share it. The reclaimer (compact.go) takes it
	// exclusively for one batch of keys at a time.
	mu   sync.RWMutex
	tree *btree.BTreeG[keyItem]
	log  revLog
	// rev is the current revision: the revision of the last write
	// transaction that changed something, 1 for an empty store.
	rev int64
	// compactRev is the revision of the last compaction, -1 if none.
	compactRev int64
	// size is the bytes held; see Size.
	size int64
	// live is the number of keys whose latest version is not a tombstone;
	// see LiveKeys.
	live   int
	closed bool
	comp   compactor
	// tight gives back the index memory that inserts leave (tighten.go).
	tight tightener
}

// New returns an empty store at revision 1.
func New(cfg Config) *Store {
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	s := &Store{cfg: cfg}
	s.reset(newTree(), revLog{}, 1, -1, 0, 0)
	return s
}

func newTree() *btree.BTreeG[keyItem] {
	return btree.NewBTreeGOptions(lessItem, btree.Options{NoLocks: true})
}

// reset installs new contents; the caller holds mu or owns s exclusively.
func (s *Store) reset(tree *btree.BTreeG[keyItem], log revLog, rev, compactRev, size int64, live int) {
	s.tree, s.log, s.rev, s.compactRev, s.size, s.live = tree, log, rev, compactRev, size, live
	s.tight = tightener{}
	s.comp.target = compactRev
	s.comp.done = compactRev
	s.comp.contents++
}

// Revision returns the current revision.
func (s *Store) Revision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// CompactRevision returns the revision of the last compaction, 0 if the
// store was never compacted.
func (s *Store) CompactRevision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return max(s.compactRev, 0)
}

// Size returns the bytes the store holds: key and value bytes plus a fixed
// overhead per key and per version. Physical compaction lowers it as it
// proceeds, so two replicas may briefly differ.
func (s *Store) Size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size
}

// LiveKeys returns the number of keys that exist at the current revision:
// deleted keys are not counted, even while their history is held (what
// etcd's etcd_mvcc_keys_total reports).
func (s *Store) LiveKeys() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live
}

// Len returns the number of keys in the index, including deleted keys whose
// history is still held (LiveKeys counts only the others).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Len()
}

// Close stops any physical compaction in progress, waits for it, and makes
// every later call fail with ErrClosed. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.comp.wg.Wait()
	return nil
}

// readRevision resolves a read's revision against current (SEMANTICS.md rule
// 7): 0 or negative reads current, the compact revision itself is readable.
func (s *Store) readRevision(rev, current int64) (int64, error) {
	if rev <= 0 {
		return current, nil
	}
	if rev > current {
		return 0, fmt.Errorf("%w: %d, current revision %d", ErrFutureRevision, rev, current)
	}
	if rev < s.compactRev {
		return 0, fmt.Errorf("%w: %d, compacted at %d", ErrCompacted, rev, s.compactRev)
	}
	return rev, nil
}

// Range reads keys at a revision.
func (s *Store) Range(r *RangeRequest) (*RangeResult, error) {
	if err := validateRange(r); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	rev, err := s.readRevision(r.Revision, s.rev)
	if err != nil {
		return nil, err
	}
	return s.rangeAt(r, rev, s.rev), nil
}

// Put writes one key as a write transaction of its own and returns its
// result and event.
func (s *Store) Put(r *PutRequest) (*PutResult, []Event, error) {
	if err := validatePut(r); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	if err := s.checkPut(r); err != nil {
		return nil, nil, err
	}
	w := s.newWriter()
	res := w.put(r)
	return res, w.commit(), nil
}

// DeleteRange deletes keys as a write transaction of its own. Deleting
// nothing does not change the revision.
func (s *Store) DeleteRange(r *DeleteRequest) (*DeleteResult, []Event, error) {
	if len(r.Key) == 0 {
		return nil, nil, ErrEmptyKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	w := s.newWriter()
	res := w.deleteRange(r)
	return res, w.commit(), nil
}

func validateRange(r *RangeRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	if r.SortOrder > SortDescend || r.SortTarget > SortByValue {
		return fmt.Errorf("%w: order %d, target %d", ErrInvalidSortOption, r.SortOrder, r.SortTarget)
	}
	return nil
}

func validatePut(r *PutRequest) error {
	switch {
	case len(r.Key) == 0:
		return ErrEmptyKey
	case r.IgnoreValue && len(r.Value) != 0:
		return ErrValueProvided
	case r.IgnoreLease && r.Lease != 0:
		return ErrLeaseProvided
	case uint64(len(r.Value)) > MaxValueSize:
		return fmt.Errorf("%w: %d bytes", ErrValueTooLarge, len(r.Value))
	}
	return nil
}

// checkPut runs a put's checks against the store (SEMANTICS.md rule 9): an
// unknown lease first, then ignore-value/ignore-lease on a missing key.
func (s *Store) checkPut(r *PutRequest) error {
	if r.Lease != 0 {
		if s.cfg.CheckLease == nil {
			return fmt.Errorf("%w: %d", ErrLeaseNotFound, r.Lease)
		}
		if err := s.cfg.CheckLease(r.Lease); err != nil {
			return err
		}
	}
	if r.IgnoreValue || r.IgnoreLease {
		it, ok := s.tree.Get(probe(r.Key))
		if !ok || !it.live() {
			return fmt.Errorf("%w: %q", ErrKeyNotFound, r.Key)
		}
	}
	return nil
}
