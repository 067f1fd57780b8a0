package mvcc

import "bytes"

// OverwriteValue replaces the value of key's current version in place,
// keeping its revisions, version and lease, as a bit flip in a replica's
// storage would: nothing the store reports besides the value (and Size)
// changes, and Hash is the only way to notice. It is a fault-injection
// seam for tests of corruption detection (kvstore's TestHooks); a
// replicated store that calls it no longer agrees with its peers. It is
// ErrEmptyKey for an empty key, ErrKeyNotFound when key has no current
// version (never written, or deleted), ErrClosed on a closed store. Safe
// for concurrent use; snapshots taken before it keep the old value.
func (s *Store) OverwriteValue(key, value []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if len(value) > MaxValueSize {
		return ErrValueTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	it, ok := s.tree.Get(probe(key))
	if !ok || !it.live() {
		return ErrKeyNotFound
	}
	// The current version is the tail's last. Older items and snapshots
	// share the tail chunk, so the change goes into a copy of it.
	last := *it.versions.last()
	s.size += int64(len(value)) - int64(len(last.value()))
	last.setValue(bytes.Clone(value))
	it.versions = it.versions.replacedLast(last)
	s.tree.Set(it)
	return nil
}
