package mvcc

import (
	"math"
	"runtime"

	"github.com/tidwall/btree"
)

// compactBatch is the number of keys the reclaimer examines per hold of the
// write lock.
const compactBatch = 1024

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

// reclaimPass walks every key once, a batch at a time, and returns the
// revision it completed: the target when it started. A compaction arriving
// mid-pass raises the revision the rest of the pass compacts at (a
// compaction at a higher revision drops a superset of what a lower one
// drops); the keys behind it wait for the next pass. It returns false if the
// store was closed or restored under it.
//
// Each batch holds the write lock twice, briefly: once to pick the items
// that hold dropped versions, once to install their shortened version lists.
// The lists are built in between, without the lock: that is where the
// copying and allocating is, and it only reads the old items, which are
// immutable. The caller holds mu, which is released and taken again.
func (s *Store) reclaimPass() (int64, bool) {
	rev, contents := s.comp.target, s.comp.contents
	var b reclaimBatch
	after, more := "", true
	for first := true; more; first = false {
		after, more = b.pick(s.tree, s.comp.target, after, first)
		s.mu.Unlock()
		b.build()
		runtime.Gosched() // let the readers and writers woken by Unlock in
		s.mu.Lock()
		if s.closed || s.comp.contents != contents {
			return 0, false
		}
		s.size -= b.install(s.tree)
	}
	return rev, true
}

// reclaimBatch is one batch of keys being reclaimed. Its buffers are reused
// from batch to batch.
type reclaimBatch struct {
	rev   int64
	items []reclaimItem
}

// reclaimItem is one key of a batch: the item as it was picked and the
// shortened version list built for it.
type reclaimItem struct {
	old  keyItem
	drop int
	kept revList
	// freed is the bytes Size stops counting once kept is installed.
	freed int64
}

// pick collects the items among the first compactBatch keys after after
// (from the first key when first) that hold versions a compaction at rev
// drops. It returns the last key examined and whether keys remain. The
// caller holds the store's lock.
func (b *reclaimBatch) pick(tree *btree.BTreeG[keyItem], rev int64, after string, first bool) (string, bool) {
	b.rev, b.items = rev, b.items[:0]
	n, more := 0, false
	tree.Ascend(keyItem{key: after}, func(it keyItem) bool {
		if !first && it.key == after {
			return true
		}
		if n == compactBatch {
			more = true
			return false
		}
		n++
		after = it.key
		if drop := it.compactIndex(rev); drop > 0 {
			b.items = append(b.items, reclaimItem{old: it, drop: drop})
		}
		return true
	})
	return after, more
}

// build makes the shortened version lists. It needs no lock: it reads only
// the picked items, whose lists no one modifies where a copy can see, and
// copies at most one chunk per key, however many versions go.
func (b *reclaimBatch) build() {
	for i := range b.items {
		b.items[i].build()
	}
}

func (r *reclaimItem) build() {
	var valueBytes int64
	r.kept, valueBytes = r.old.versions.dropFront(r.drop)
	r.freed = valueBytes + int64(r.drop)*versionOverhead
	if r.kept.len() == 0 {
		r.freed += int64(len(r.old.key)) + keyOverhead
	}
}

// install replaces each picked item with its shortened one, or removes it
// when nothing is left, and returns the bytes freed. An item a write changed
// since it was picked is reclaimed again from its new state. The caller
// holds the store's lock.
func (b *reclaimBatch) install(tree *btree.BTreeG[keyItem]) int64 {
	var freed int64
	var hint btree.PathHint
	for i := range b.items {
		r := &b.items[i]
		cur, ok := tree.GetHint(r.old, &hint)
		if !ok {
			continue // only the reclaimer removes items: cannot happen
		}
		if !cur.versions.same(r.old.versions) {
			// A write appended a version: what to drop is unchanged, the
			// list to drop it from is not.
			r.old = cur
			r.build()
		}
		freed += r.freed
		if r.kept.len() == 0 {
			tree.DeleteHint(cur, &hint)
		} else {
			tree.SetHint(keyItem{key: cur.key, versions: r.kept}, &hint)
		}
		*r = reclaimItem{} // hold no memory until the next batch
	}
	return freed
}
