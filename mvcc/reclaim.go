package mvcc

import (
	"math"
	"time"
)

// compactBatch is the number of keys the reclaimer examines per hold of the
// write lock; compactPause is how long it sleeps, without the lock, between
// batches (etcd pauses between its compaction batches too). Without the
// pause the reclaimer holds the lock nearly all the time it runs: a writer
// woken by its Unlock often finds it taken again, and on a busy host the
// reclaimer, descheduled, is nearly always descheduled holding it. The
// pause caps its share of the lock, and of a core, at about half, at the
// cost of about a second per 1M keys per pass.
const (
	compactBatch = 1024
	compactPause = time.Millisecond
)

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

// reclaimPass walks every key once, a batch at a time, releasing the lock
// and pausing between batches, and returns the revision it completed: the
// target when it started. A compaction arriving mid-pass raises the revision the rest of
// the pass compacts at (a compaction at a higher revision drops a superset
// of what a lower one drops); the keys behind it wait for the next pass. It
// returns false if the store was closed or restored under it. The caller
// holds mu, which is released and taken again.
func (s *Store) reclaimPass() (int64, bool) {
	rev, contents := s.comp.target, s.comp.contents
	var changed []keyItem
	after, more := "", true
	for first := true; more; first = false {
		after, more, changed = s.compactBatch(s.comp.target, after, first, changed[:0])
		s.mu.Unlock()
		if more {
			time.Sleep(compactPause)
		}
		s.mu.Lock()
		if s.closed || s.comp.contents != contents {
			return 0, false
		}
	}
	return rev, true
}

// compactBatch compacts the keys among the first compactBatch keys after
// after (from the first key when first) that hold versions a compaction at
// rev drops, and returns the last key examined and whether keys remain.
// changed is a buffer for the items it rewrites, returned for reuse. The
// caller holds mu.
func (s *Store) compactBatch(rev int64, after string, first bool, changed []keyItem) (string, bool, []keyItem) {
	n, more := 0, false
	resume := !first // the walk starts at after, which the last batch did
	s.tree.Ascend(keyItem{key: after}, func(it keyItem) bool {
		if resume {
			resume = false
			if it.key == after {
				return true
			}
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
	clear(changed) // hold no memory until the next batch
	return after, more, changed
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
