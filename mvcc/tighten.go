package mvcc

import "github.com/tidwall/btree"

// tightener gives back, as keys are inserted, the memory that tidwall/btree's
// splits leave in the index's nodes.
//
// Why: a full node splits at its middle. The left half keeps the whole
// array (sized for maxItems) with its slice capped at leafHalf; the right
// half is a slice of the same array's upper part until it grows out of it.
// Under ascending inserts, which is what loading a fresh keyspace is under
// any number of writers, every leaf but the last ends as such a left half:
// leafHalf items in twice their bytes (TestPackedTreeFill).
//
// How, with the library's public API only: copy-on-write. A node copied for
// a write gets a new array of its slice's capacity, and a capped left half's
// capacity is its length. So after an IsoCopy (which marks every node as
// shared; the copy itself is discarded), a mutable walk copies each node it
// visits into an array just large enough, and the old arrays become
// garbage: items are copied (memmove), no key is compared.
//
// A pass must replace every internal node, not only those over the walked
// range. Split siblings share one array of child pointers; if the pass
// replaced the right sibling's children but left the left sibling, that
// shared array would keep, past the left sibling's length, pointers to the
// replaced children and with them the old nodes' whole arrays (measured
// with 40-byte items: 67 B of index per item instead of 44). Touching one item in every
// tightenSample by position (GetAtMut: counts, no key comparisons) reaches
// every bottom-level internal node, which spans over a thousand items, and
// the nodes above it; it also copies one leaf in about sixteen.
//
// When: after a write transaction that brings the keys inserted since the
// last pass to max(tightenMinInserts, Len/tightenFraction). The walk starts
// a node's worth of items before the smallest key inserted since then (the
// leaf that held it may have split since, its left half below that key)
// and visits at most tightenSpan times as many items as were inserted: the
// region the inserts filled. The cost is O(1) per insert amortized, and a
// load leaves under 1/tightenFraction of the index untightened. Leaves that
// took an insert after their split have regrown by append and keep their
// size (Defragment rebuilds those). After a pass the next write to any
// other node copies its path once, as after a Snapshot.
//
// The tightener is used under the store's write lock.
type tightener struct {
	// inserted counts the keys added to the index since the last pass;
	// from is the smallest of them.
	inserted int
	from     string
}

const (
	tightenMinInserts = 4096
	tightenFraction   = 16
	tightenSpan       = 2
	tightenSample     = 512
)

// noteInsert records that key was added to the index.
func (t *tightener) noteInsert(key string) {
	if t.inserted == 0 || key < t.from {
		t.from = key
	}
	t.inserted++
}

// maybeTighten runs a pass over tree if enough keys were inserted since the
// last one.
func (t *tightener) maybeTighten(tree *btree.BTreeG[keyItem]) {
	if t.inserted < max(tightenMinInserts, tree.Len()/tightenFraction) {
		return
	}
	start, back := keyItem{key: t.from}, maxItems+1
	tree.Descend(start, func(it keyItem) bool {
		start = it
		back--
		return back > 0
	})
	tree.IsoCopy()
	for i := 0; i < tree.Len(); i += tightenSample {
		tree.GetAtMut(i)
	}
	budget := tightenSpan*t.inserted + maxItems + 1
	tree.AscendMut(start, func(keyItem) bool {
		budget--
		return budget > 0
	})
	*t = tightener{}
}
