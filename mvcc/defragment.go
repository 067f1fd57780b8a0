package mvcc

// Defragment rebuilds the store's key index with its nodes nearly full,
// returning the memory that half-full nodes hold: after ascending loads and
// after deletes the index can hold about twice the bytes of its entries
// (see treePacker). Nothing a reader can observe changes: the same keys
// with the same versions, revision, compact revision and history; physical
// compaction in progress carries on in the new index; a [Snapshot] taken
// before keeps reading its own copy, which keeps the old index's memory
// until it is dropped.
//
// It holds the store's write lock for its whole duration, O(keys) (about
// 0.4 s of CPU per million keys, most of it key comparisons): writers and
// readers of this store wait for it. It
// allocates the new index before the old one becomes garbage, so memory
// briefly rises by the new index's size. It returns ErrClosed on a closed
// store and is safe for concurrent use.
func (s *Store) Defragment() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.tree = packTree(s.tree)
	s.tight = tightener{}
	return nil
}
