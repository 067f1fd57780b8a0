package mvcc

import (
	"slices"

	"github.com/tidwall/btree"
)

// treePacker builds an index from items in ascending key order with its
// leaves nearly full, where Load alone leaves them half full.
//
// Why: tidwall/btree splits a full node at its middle and caps the left
// half's slice at its length, so ascending inserts (Load included) leave
// every leaf holding max/2 items in an array sized for max: about 2.2× the
// bytes of the items themselves. The packer Loads every other item, which
// gives the same half-full shape with room between each pair, then Sets the
// items in between, in order: each lands in the leaf its neighbours are in
// and fills it to about max without a split. The capped left halves grow
// into arrays of about max items; the arrays they shared with their right
// halves become garbage. The result holds the same items in the same order
// in about half the memory, using only the library's public API.
//
// A treePacker is used by one goroutine; the tree it returns shares nothing
// with any other tree.
type treePacker struct {
	tree *btree.BTreeG[keyItem]
	// between holds the items of odd positions until finish Sets them.
	between []keyItem
	n       int
}

func newTreePacker() *treePacker {
	return &treePacker{tree: newTree()}
}

// add appends it, which must sort after every item added before.
func (p *treePacker) add(it keyItem) {
	if p.n%2 == 0 {
		p.tree.Load(it)
	} else {
		if len(p.between) == cap(p.between) {
			// Double: append grows a large slice by a quarter.
			p.between = slices.Grow(p.between, max(len(p.between), 1024))
		}
		p.between = append(p.between, it)
	}
	p.n++
}

// len returns the number of items added.
func (p *treePacker) len() int { return p.n }

// finish returns the packed tree; the packer must not be used again.
func (p *treePacker) finish() *btree.BTreeG[keyItem] {
	var hint btree.PathHint // consecutive Sets land next to each other
	for _, it := range p.between {
		p.tree.SetHint(it, &hint)
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
