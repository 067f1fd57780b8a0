package mvcc

import (
	"fmt"
	"runtime"
	"sync"
)

// compactBatch is the number of keys physical compaction examines per hold of
// the write lock; it keeps each pause well under a millisecond.
const compactBatch = 1024

// compactor is the state of physical compaction, guarded by Store.mu.
type compactor struct {
	// target is the highest revision compaction was asked for; done is the
	// revision physical compaction has completed.
	target, done int64
	running      bool
	// generation changes when the store is closed or restored, which
	// abandons a compaction in progress.
	generation uint64
	waiters    []compactWaiter
	wg         sync.WaitGroup
}

type compactWaiter struct {
	rev int64
	ch  chan struct{}
}

// Compact discards history at and below rev (SEMANTICS.md rule 17): reads
// below rev fail with ErrCompacted from the moment it returns, while every
// read at rev or above sees exactly what it saw before. It keeps the newest
// version at or below rev of each key unless that is a delete below rev.
//
// The memory is reclaimed in the background, in slices short enough that
// readers and writers never wait long; the returned channel is closed when
// that physical compaction is finished (or abandoned by Close or Restore).
//
// Compact at or below the compact revision is ErrCompacted, except that a
// never-compacted store accepts Compact(0) and does nothing; above the
// current revision is ErrFutureRevision.
//
// A delete at exactly rev is kept (its key reads as missing) until a later
// compaction, as etcd v3.7 keeps it: a watch from rev still sees it.
func (s *Store) Compact(rev int64) (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if rev > s.rev {
		return nil, fmt.Errorf("%w: compact %d, current revision %d", ErrFutureRevision, rev, s.rev)
	}
	if rev <= s.compactRev {
		return nil, fmt.Errorf("%w: compact %d, compacted at %d", ErrCompacted, rev, s.compactRev)
	}
	s.compactRev = rev
	s.log.trimBefore(rev)
	ch := make(chan struct{})
	s.comp.target = rev
	s.comp.waiters = append(s.comp.waiters, compactWaiter{rev: rev, ch: ch})
	if !s.comp.running {
		s.comp.running = true
		s.comp.wg.Add(1)
		go s.compactLoop(s.comp.generation)
	}
	return ch, nil
}

// compactLoop runs physical compaction passes until the target is reached or
// its generation ends. Each pass walks every key at a fixed revision in
// batches, releasing the lock between batches.
func (s *Store) compactLoop(gen uint64) {
	defer s.comp.wg.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.comp.generation == gen && s.comp.done < s.comp.target {
		rev := s.comp.target
		after, more := "", true
		for first := true; more; first = false {
			if s.comp.generation != gen {
				break
			}
			after, more = s.compactBatch(rev, after, first)
			s.mu.Unlock()
			runtime.Gosched() // let waiting readers and writers in
			s.mu.Lock()
		}
		if s.comp.generation != gen {
			break
		}
		s.comp.done = rev
		s.notifyCompacted(rev)
	}
	s.comp.running = false
	if s.comp.generation != gen {
		s.notifyCompacted(1<<63 - 1) // abandoned: release every waiter
	}
}

// compactBatch compacts up to compactBatch keys after the key after (from
// the first key when first), returning the last key examined and whether
// keys remain.
func (s *Store) compactBatch(rev int64, after string, first bool) (string, bool) {
	var changed []keyItem
	n, more := 0, false
	s.tree.Ascend(keyItem{key: after}, func(it keyItem) bool {
		if !first && it.key == after {
			return true
		}
		if n == compactBatch {
			more = true
			return false
		}
		n++
		after = it.key
		if it.compactIndex(rev) > 0 {
			changed = append(changed, it)
		}
		return true
	})
	for _, it := range changed {
		s.compactItem(it, rev)
	}
	return after, more
}

// compactItem drops its versions hidden by a compaction at rev, replacing or
// removing the item.
func (s *Store) compactItem(it keyItem, rev int64) {
	drop := it.compactIndex(rev)
	// Older items (and snapshots) keep the old list intact; the cost is at
	// most one chunk copied, however many versions go.
	kept, valueBytes := it.versions.dropFront(drop)
	s.size -= valueBytes + int64(drop)*versionOverhead
	if kept.len() == 0 {
		s.tree.Delete(it)
		s.size -= int64(len(it.key)) + keyOverhead
		return
	}
	it.versions = kept
	s.tree.Set(it)
}

func (s *Store) notifyCompacted(rev int64) {
	kept := s.comp.waiters[:0]
	for _, w := range s.comp.waiters {
		if w.rev <= rev {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	s.comp.waiters = kept
}
