package storage

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// memLogStore is the raft log of a Memory: the entries, whose
// indexes are consecutive, in one slice. raft's own InmemStore keeps them
// in a map and deletes a compacted prefix one key at a time under its
// lock; after a snapshot that is hundreds of thousands of deletes on a busy
// node, during which replication and every append wait (tens of ms in the
// lease soak). Here dropping a prefix is a reslice, and a lookup is a
// subtraction.
//
// It is not a [raft.MonotonicLogStore], as raft's InmemStore is not: after
// installing a snapshot, raft v1.7.3 empties a monotonic store without
// resetting its own idea of the last entry, and a follower whose log ran
// past the snapshot then panics with "log not found" (hashicorp/raft#697;
// the robustness suite hit it). Instead raft compacts the log up to the
// snapshot and appends after it, possibly leaving a gap; the store drops
// the entries before a gap, which the snapshot covers.
//
// It is safe for concurrent use.
type memLogStore struct {
	mu sync.RWMutex
	// first is the index of entries[0]; meaningless while entries is
	// empty.
	first   uint64
	entries []*raft.Log
}

// FirstIndex implements raft.LogStore; 0 means empty.
func (s *memLogStore) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.entries) == 0 {
		return 0, nil
	}
	return s.first, nil
}

// LastIndex implements raft.LogStore; 0 means empty.
func (s *memLogStore) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastLocked(), nil
}

func (s *memLogStore) lastLocked() uint64 {
	if len(s.entries) == 0 {
		return 0
	}
	return s.first + uint64(len(s.entries)) - 1
}

// GetLog implements raft.LogStore.
func (s *memLogStore) GetLog(index uint64, log *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.entries) == 0 || index < s.first || index > s.lastLocked() {
		return raft.ErrLogNotFound
	}
	*log = *s.entries[index-s.first]
	return nil
}

// StoreLog implements raft.LogStore.
func (s *memLogStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore. The entries are kept as given: raft
// never changes an entry after handing it over. An entry at or below the
// last index replaces it and everything after it, as a conflicting suffix.
func (s *memLogStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range logs {
		switch last := s.lastLocked(); {
		case len(s.entries) == 0:
			s.first = l.Index
		case l.Index > last+1: // past a snapshot that covers the log
			clear(s.entries)
			s.entries = s.entries[:0]
			s.first = l.Index
		case l.Index < s.first:
			return fmt.Errorf("kvstore: in-memory raft log: entry %d precedes the first, %d", l.Index, s.first)
		case l.Index <= last:
			s.truncateLocked(l.Index)
		}
		s.entries = append(s.entries, l)
	}
	return nil
}

// DeleteRange implements raft.LogStore. raft deletes a prefix (after a
// snapshot), a suffix (a follower's conflicting entries) or everything;
// deleting from the middle would leave a gap and is refused.
func (s *memLogStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 || max < s.first || min > s.lastLocked() || min > max {
		return nil
	}
	last := s.lastLocked()
	switch {
	case min <= s.first && max >= last:
		clear(s.entries)
		s.entries = s.entries[:0]
	case min <= s.first:
		n := max - s.first + 1
		clear(s.entries[:n]) // let the collector have the entries now
		s.entries = s.entries[n:]
		s.first = max + 1
	case max >= last:
		s.truncateLocked(min)
	default:
		return fmt.Errorf("kvstore: in-memory raft log: deleting %d-%d would leave a gap in %d-%d", min, max, s.first, last)
	}
	return nil
}

// truncateLocked drops the entries from index on; index must be in the log.
func (s *memLogStore) truncateLocked(index uint64) {
	keep := index - s.first
	clear(s.entries[keep:])
	s.entries = s.entries[:keep]
}
