package watch

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The index against a brute-force model: random adds and removes of
// single-key, range and from-key watchers, and stabbing queries, checking
// the treap's order, heap and max-end invariants after every change.
func TestIndexMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	key := func() string { return fmt.Sprintf("%c%c", 'a'+rng.IntN(6), 'a'+rng.IntN(6)) }
	var x index
	var live []*watcher
	id := uint64(0)
	for step := range 6000 {
		if len(live) > 0 && rng.IntN(5) < 2 {
			i := rng.IntN(len(live))
			x.remove(live[i])
			live = slices.Delete(live, i, i+1)
		} else {
			id++
			w := &watcher{id: id, key: key()}
			switch rng.IntN(3) {
			case 1:
				w.kind, w.end = kindRange, key()
				if w.end <= w.key {
					w.end = w.key + "\x00"
				}
			case 2:
				w.kind = kindFromKey
			}
			x.add(w)
			live = append(live, w)
		}
		if step%50 == 0 {
			checkTreap(t, x.ranges.root)
		}
		k := key()[:1+rng.IntN(2)]
		var got []uint64
		for _, m := range x.collect(k, 7, nil) {
			if m.ev != 7 {
				t.Fatal("wrong event index")
			}
			got = append(got, m.w.id)
		}
		var want []uint64
		for _, w := range live {
			in := k == w.key
			switch w.kind {
			case kindRange:
				in = k >= w.key && k < w.end
			case kindFromKey:
				in = k >= w.key
			}
			if in {
				want = append(want, w.id)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: key %q matched %v, want %v", step, k, got, want)
		}
	}
	for _, w := range live {
		x.remove(w)
	}
	if len(x.keys) != 0 || x.ranges.root != nil {
		t.Fatal("index not empty after removing every watcher")
	}
}

// checkTreap verifies order, heap priority and the max-end augmentation,
// and returns the subtree's max end.
func checkTreap(t *testing.T, n *rangeNode) (string, bool) {
	t.Helper()
	if n == nil {
		return "", false
	}
	if len(n.watchers) == 0 {
		t.Fatalf("empty node %q-%q kept", n.lo, n.hi)
	}
	maxHi, maxInf := n.hi, n.inf
	for i, c := range []*rangeNode{n.left, n.right} {
		if c == nil {
			continue
		}
		if c.prio > n.prio {
			t.Fatal("heap order broken")
		}
		if cmp := compareTo(c.lo, c.hi, c.inf, n); (i == 0 && cmp >= 0) || (i == 1 && cmp <= 0) {
			t.Fatal("key order broken")
		}
		h, inf := checkTreap(t, c)
		if !maxInf && (inf || h > maxHi) {
			maxHi, maxInf = h, inf
		}
	}
	minLo := n.lo
	if n.left != nil {
		minLo = n.left.minLo
	}
	if minLo != n.minLo {
		t.Fatalf("node %q-%q: min lo %q, want %q", n.lo, n.hi, n.minLo, minLo)
	}
	if maxInf != n.maxInf || (!maxInf && maxHi != n.maxHi) {
		t.Fatalf("node %q-%q: max end %q/%v, want %q/%v", n.lo, n.hi, n.maxHi, n.maxInf, maxHi, maxInf)
	}
	return maxHi, maxInf
}
