package mvcc

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// compactBatch is the number of keys the reclaimer examines per hold of the
// write lock; it keeps each hold well under a millisecond on a 1M-key store
// (BenchmarkCompactLockHold).
const compactBatch = 1024

// compactor is the state of physical compaction, the reclaiming of the
// versions a compaction dropped logically. It is guarded by Store.mu.
type compactor struct {
	// target is the revision reclaiming works towards, the store's compact
	// revision. done is the revision reclaiming has completed: no key holds
	// a version that a compaction at done drops.
	target, done int64
	// running is set while the reclaimer goroutine exists; it exits once
	// done reaches target, or when the store is closed.
	running bool
	// contents changes when Restore replaces the store's contents, which
	// makes the reclaimer abandon the pass it is in.
	contents uint64
	waiters  []compactWaiter
	wg       sync.WaitGroup
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
// Compact itself is O(1) in the number of keys: it moves the compact
// revision and trims the history log. The versions it dropped are reclaimed
// afterwards by a goroutine of the store's, a batch of keys per hold of the
// write lock, so that readers and writers interleave with it. Until then
// they are invisible: reads, History, Hash and Snapshot skip every version a
// compaction dropped, so no result depends on how far reclaiming has got;
// only Size and Len, which count what is held, do. The returned channel is
// closed once this compaction has been reclaimed, or when Close or Restore
// abandons it. A compaction during the reclaiming of an earlier one is
// reclaimed after it, in the same goroutine.
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
	if err := s.compactLogically(rev); err != nil {
		return nil, err
	}
	ch := make(chan struct{})
	s.comp.waiters = append(s.comp.waiters, compactWaiter{rev: rev, ch: ch})
	if !s.comp.running {
		s.comp.running = true
		s.comp.wg.Add(1)
		go s.reclaim()
	}
	return ch, nil
}

// compactLogically checks rev and makes the compaction visible: it moves the
// compact revision, trims the history log and sets the reclaimer's target.
// The caller holds mu.
func (s *Store) compactLogically(rev int64) error {
	if s.closed {
		return ErrClosed
	}
	if rev > s.rev {
		return fmt.Errorf("%w: compact %d, current revision %d", ErrFutureRevision, rev, s.rev)
	}
	if rev <= s.compactRev {
		return fmt.Errorf("%w: compact %d, compacted at %d", ErrCompacted, rev, s.compactRev)
	}
	s.compactRev = rev
	s.log.trimBefore(rev)
	s.comp.target = rev
	return nil
}

// reclaim is the reclaimer goroutine: it runs passes over the keys until
// reclaiming has caught up with the compact revision, or the store is
// closed. Close waits for it.
func (s *Store) reclaim() {
	defer s.comp.wg.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && s.comp.done < s.comp.target {
		if rev, ok := s.reclaimPass(); ok {
			s.comp.done = rev
			s.notifyCompacted(rev)
		}
	}
	s.comp.running = false
	if s.closed {
		s.notifyCompacted(math.MaxInt64) // abandoned: release every waiter
	}
}

// reclaimPass walks every key once, in batches, releasing the lock between
// batches, and returns the revision it completed: the target when it
// started. A compaction arriving mid-pass raises the revision the rest of
// the pass compacts at (a compaction at a higher revision drops a superset
// of what a lower one drops); the keys behind it wait for the next pass. It
// returns false if the store was closed or restored under it. The caller
// holds mu, which is released and taken again.
func (s *Store) reclaimPass() (int64, bool) {
	rev, contents := s.comp.target, s.comp.contents
	after, more := "", true
	for first := true; more; first = false {
		after, more = s.compactBatch(s.comp.target, after, first)
		s.mu.Unlock()
		runtime.Gosched() // let waiting readers and writers in
		s.mu.Lock()
		if s.closed || s.comp.contents != contents {
			return 0, false
		}
	}
	return rev, true
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
