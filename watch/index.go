package watch

import (
	"strings"
	"unsafe"
)

// rangeKind says how a watcher's key and end select keys.
type rangeKind uint8

const (
	kindKey     rangeKind = iota // the key alone
	kindRange                    // [key, end)
	kindFromKey                  // every key >= key (end "\x00")
)

// group is the watchers of one exact key or one distinct range, in no
// particular order; a watcher knows its slot so removal is O(1).
type group struct {
	watchers []*watcher
}

func (g *group) add(w *watcher) {
	w.grp, w.slot = g, int32(len(g.watchers))
	g.watchers = append(g.watchers, w)
}

func (g *group) remove(w *watcher) {
	last := len(g.watchers) - 1
	moved := g.watchers[last]
	g.watchers[w.slot] = moved
	moved.slot = w.slot
	g.watchers[last] = nil
	g.watchers = g.watchers[:last]
	w.grp = nil
}

// match is one (watcher, event) pair found by Notify: the event at position
// ev of the notified revision is in the watcher's range.
type match struct {
	w  *watcher
	ev int32
}

// index finds the watchers whose range holds a key at a cost proportional
// to the matches, not to the number of watchers: single-key watchers live
// in a map, range and from-key watchers in an interval treap.
type index struct {
	keys   map[string]*group
	ranges rangeTree
}

func (x *index) add(w *watcher) {
	if w.kind == kindKey {
		if x.keys == nil {
			x.keys = make(map[string]*group)
		}
		g := x.keys[w.key]
		if g == nil {
			g = &group{}
			x.keys[w.key] = g
		}
		g.add(w)
		return
	}
	x.ranges.add(w)
}

func (x *index) remove(w *watcher) {
	g := w.grp
	if g == nil {
		return
	}
	g.remove(w)
	if len(g.watchers) > 0 {
		return
	}
	if w.kind == kindKey {
		delete(x.keys, w.key)
		return
	}
	x.ranges.remove(w)
}

// collect appends to out a match for every watcher whose range holds key.
func (x *index) collect(key string, ev int32, out []match) []match {
	if g := x.keys[key]; g != nil {
		for _, w := range g.watchers {
			out = append(out, match{w, ev})
		}
	}
	if x.ranges.root != nil {
		out = x.ranges.root.stab(key, ev, out)
	}
	return out
}

// rangeTree is a treap of distinct ranges ordered by (lo, hi), each node
// augmented with the largest hi of its subtree, so that a stabbing query
// (which ranges hold key k?) visits O(log n + matches) nodes, and O(1) for
// a key outside the span of every range. Priorities
// come from a fixed-seed generator: the shape is deterministic.
type rangeTree struct {
	root *rangeNode
	seed uint64
}

type rangeNode struct {
	group
	lo, hi string
	inf    bool // hi is +infinity: a from-key range
	// maxHi and maxInf are the largest hi in the subtree rooted here,
	// minLo its smallest lo: a key outside [minLo, maxHi) skips it whole.
	maxHi       string
	maxInf      bool
	minLo       string
	prio        uint64
	left, right *rangeNode
}

// compareTo orders the range (lo, hi, inf) against n's.
func compareTo(lo, hi string, inf bool, n *rangeNode) int {
	if c := strings.Compare(lo, n.lo); c != 0 {
		return c
	}
	switch {
	case inf && n.inf:
		return 0
	case inf:
		return 1
	case n.inf:
		return -1
	}
	return strings.Compare(hi, n.hi)
}

func (n *rangeNode) fix() {
	n.minLo = n.lo
	if n.left != nil {
		n.minLo = n.left.minLo // ordered by lo: the leftmost is smallest
	}
	n.maxHi, n.maxInf = n.hi, n.inf
	for _, c := range [2]*rangeNode{n.left, n.right} {
		if c != nil && !n.maxInf && (c.maxInf || c.maxHi > n.maxHi) {
			n.maxHi, n.maxInf = c.maxHi, c.maxInf
		}
	}
}

func rotateRight(n *rangeNode) *rangeNode {
	l := n.left
	n.left = l.right
	n.fix()
	l.right = n
	l.fix()
	return l
}

func rotateLeft(n *rangeNode) *rangeNode {
	r := n.right
	n.right = r.left
	n.fix()
	r.left = n
	r.fix()
	return r
}

func (t *rangeTree) nextPrio() uint64 {
	// splitmix64
	t.seed += 0x9e3779b97f4a7c15
	z := t.seed
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (t *rangeTree) add(w *watcher) {
	var node *rangeNode
	t.root = t.insert(t.root, w.key, w.end, w.kind == kindFromKey, &node)
	node.add(w)
}

func (t *rangeTree) insert(n *rangeNode, lo, hi string, inf bool, found **rangeNode) *rangeNode {
	if n == nil {
		n = &rangeNode{lo: lo, hi: hi, inf: inf, prio: t.nextPrio()}
		n.fix()
		*found = n
		return n
	}
	switch c := compareTo(lo, hi, inf, n); {
	case c == 0:
		*found = n
		return n
	case c < 0:
		n.left = t.insert(n.left, lo, hi, inf, found)
		if n.left.prio > n.prio {
			return rotateRight(n)
		}
	default:
		n.right = t.insert(n.right, lo, hi, inf, found)
		if n.right.prio > n.prio {
			return rotateLeft(n)
		}
	}
	n.fix()
	return n
}

// remove deletes the (now empty) node that held w.
func (t *rangeTree) remove(w *watcher) {
	t.root = t.delete(t.root, w.key, w.end, w.kind == kindFromKey)
}

func (t *rangeTree) delete(n *rangeNode, lo, hi string, inf bool) *rangeNode {
	if n == nil {
		return nil
	}
	switch c := compareTo(lo, hi, inf, n); {
	case c == 0:
		return merge(n.left, n.right)
	case c < 0:
		n.left = t.delete(n.left, lo, hi, inf)
	default:
		n.right = t.delete(n.right, lo, hi, inf)
	}
	n.fix()
	return n
}

// merge joins two treaps whose keys are all ordered a < b.
func merge(a, b *rangeNode) *rangeNode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		a.right = merge(a.right, b)
		a.fix()
		return a
	default:
		b.left = merge(a, b.left)
		b.fix()
		return b
	}
}

// stab appends a match for every watcher of every range in n's subtree that
// holds key. It walks the search path for key in a loop and recurses only
// into left subtrees that can hold key (their max end is above it), so
// disjoint ranges cost one path from the root.
func (n *rangeNode) stab(key string, ev int32, out []match) []match {
	for n != nil {
		if key < n.minLo || (!n.maxInf && key >= n.maxHi) {
			return out // every range here starts after key or ends at or before it
		}
		if key < n.lo {
			n = n.left // n and its right subtree start after key
			continue
		}
		if l := n.left; l != nil && (l.maxInf || key < l.maxHi) {
			out = l.stab(key, ev, out)
		}
		if n.inf || key < n.hi {
			for _, w := range n.watchers {
				out = append(out, match{w, ev})
			}
		}
		n = n.right
	}
	return out
}

// aliasString views b as a string without copying; b must not change while
// the string is in use (event keys alias the store's immutable memory).
func aliasString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// aliasBytes views s as a byte slice without copying; it must not be
// modified (the store only reads request keys).
func aliasBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
