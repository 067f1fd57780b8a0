package mvcc

import (
	"github.com/tidwall/btree"
)

// treePacker builds an index from items in ascending key order with its
// leaves nearly full, where Load alone leaves them half full.
//
// Why: tidwall/btree splits a full node (maxItems) at its middle and caps
// the left half's slice at its length, so ascending inserts (Load
// included) leave every leaf holding leafHalf items in an array sized for
// maxItems: about twice the bytes of the items themselves.
//
// How, with the library's public API only: Load's splits are
// deterministic. Of the items Loaded, each leaf ends with leafHalf of them
// and the next one goes up as the separator before the next leaf. So in
// every run of packRun input items the packer Loads the first leafHalf
// (a leaf), holds back the next leafHalf, and Loads the last (the
// separator). Once Load has split that leaf off the right edge (after the
// next run's separator), the held-back items, which sort between the
// leaf's last item and its separator, are Set: each appends at the end of
// that leaf, without shifting anything and without a split, and fills it
// to 2×leafHalf of maxItems. The capped leaf grows once into an array of
// about maxItems; the array it shared with its former right half becomes
// garbage. Only the last two runs' leaves, still on the right edge when
// finish Sets their items, may split and end half full.
//
// The result holds the same items in the same order in about half the
// memory. A treePacker is used by one goroutine; the tree it returns shares
// nothing with any other tree.
type treePacker struct {
	tree *btree.BTreeG[keyItem]
	// held are the held-back items of the previous run (the first prev)
	// and of the current one.
	held []keyItem
	prev int
	n    int
	hint btree.PathHint
}

// maxItems is the most items a node of newTree's trees holds (tidwall's
// default degree, 32: 2×32-1); leafHalf is what a split leaves on the left.
const (
	maxItems = 63
	leafHalf = maxItems / 2
	packRun  = 2*leafHalf + 1
)

func newTreePacker() *treePacker {
	return &treePacker{tree: newTree(), held: make([]keyItem, 0, 2*leafHalf)}
}

// add appends it, which must sort after every item added before.
func (p *treePacker) add(it keyItem) {
	switch pos := p.n % packRun; {
	case pos < leafHalf:
		p.tree.Load(it)
	case pos < 2*leafHalf:
		p.held = append(p.held, it)
	default:
		// The separator: Loading it splits the previous run's leaf off
		// the right edge, so that leaf can take its held-back items.
		p.tree.Load(it)
		for _, h := range p.held[:p.prev] {
			p.tree.SetHint(h, &p.hint)
		}
		p.prev = copy(p.held, p.held[p.prev:])
		clear(p.held[p.prev:])
		p.held = p.held[:p.prev]
	}
	p.n++
}

// len returns the number of items added.
func (p *treePacker) len() int { return p.n }

// finish returns the packed tree; the packer must not be used again.
func (p *treePacker) finish() *btree.BTreeG[keyItem] {
	for _, h := range p.held {
		p.tree.SetHint(h, &p.hint)
	}
	t := p.tree
	*p = treePacker{}
	return t
}

// packTree returns a packed copy of t, which is only read.
func packTree(t *btree.BTreeG[keyItem]) *btree.BTreeG[keyItem] {
	p := newTreePacker()
	t.Scan(func(it keyItem) bool {
		p.add(it)
		return true
	})
	return p.finish()
}
