package mvcc

import (
	"fmt"
	"sync"
)

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
// Compact itself does not walk the keys: it moves the compact revision and
// trims the history log. The versions it dropped are reclaimed afterwards by
// a goroutine of the store's, a batch of keys per hold of the write lock
// with a pause between batches, so that readers and writers interleave with
// it. Until then
// they are invisible: reads, History, Hash and Snapshot skip every version a
// compaction dropped, so no result depends on how far reclaiming has got;
// only Size and Len, which count what is held, do. The returned channel is
// closed once this compaction has been reclaimed, or when Close or Restore
// abandons it. A compaction during the reclaiming of an earlier one joins
// it: the same goroutine reclaims both, and the earlier channel closes no
// later than the later one.
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

// notifyCompacted closes the channels of the compactions at or below rev.
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
