package mvcc

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/tidwall/btree"
)

// sortedItems returns n items in ascending key order, each with one version.
func sortedItems(n int) []keyItem {
	items := make([]keyItem, n)
	for i := range items {
		items[i] = keyItem{key: fmt.Sprintf("key/%09d", i)}
		items[i].versions = items[i].versions.appended(version{main: int64(i + 2)}, genFacts{create: int64(i + 2), ver: 1})
	}
	return items
}

func loadTree(items []keyItem) *btree.BTreeG[keyItem] {
	t := newTree()
	for _, it := range items {
		t.Load(it)
	}
	return t
}

func packItems(items []keyItem) *btree.BTreeG[keyItem] {
	p := newTreePacker()
	for _, it := range items {
		p.add(it)
	}
	return p.finish()
}

// indexBytesPerItem returns the heap a tree built by build holds per item,
// beyond the items' keys and versions (allocated before the measurement).
func indexBytesPerItem(items []keyItem, build func([]keyItem) *btree.BTreeG[keyItem]) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t := build(items)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(t)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(len(items))
}

// TestPackedTreeFill measures the index's memory: packed, it holds at most
// 1.25× the bytes of its items; built by Load alone it holds about 2.2×,
// which the test checks too, so that it is known to tell the two apart.
func TestPackedTreeFill(t *testing.T) {
	const n = 200_000
	items := sortedItems(n)
	itemSize := float64(unsafe.Sizeof(keyItem{}))
	loaded := indexBytesPerItem(items, loadTree)
	packed := indexBytesPerItem(items, packItems)
	t.Logf("index bytes per %v-byte item: Load %.1f, packed %.1f", itemSize, loaded, packed)
	if packed > 1.25*itemSize {
		t.Errorf("packed index holds %.1f bytes per item, want at most %.1f", packed, 1.25*itemSize)
	}
	if loaded <= 1.25*itemSize {
		t.Errorf("a Load-built index holds %.1f bytes per item: the measurement cannot tell it from a packed one", loaded)
	}
}

// TestPackedTreeEqualsLoaded checks that packing changes nothing a reader
// sees: the same items in the same order, the same Len, every Get found, and
// the tree stays a working btree for later Sets and Deletes.
func TestPackedTreeEqualsLoaded(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 62, 63, 64, 127, 1000, 4097, 100_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			items := sortedItems(n)
			loaded, packed := loadTree(items), packItems(items)
			if packed.Len() != n || loaded.Len() != n {
				t.Fatalf("Len: packed %d, loaded %d, want %d", packed.Len(), loaded.Len(), n)
			}
			var got []keyItem
			packed.Scan(func(it keyItem) bool {
				got = append(got, it)
				return true
			})
			i := 0
			loaded.Scan(func(it keyItem) bool {
				if i >= len(got) || got[i].key != it.key || got[i].versions.len() != it.versions.len() || got[i].versions.last() != it.versions.last() {
					t.Fatalf("item %d differs", i)
				}
				i++
				return true
			})
			if i != len(got) {
				t.Fatalf("packed has %d items, loaded %d", len(got), i)
			}
			for _, it := range items {
				if g, ok := packed.Get(keyItem{key: it.key}); !ok || g.key != it.key {
					t.Fatalf("Get(%q) = %v, %v", it.key, g.key, ok)
				}
			}
			// Still a btree: inserts between and deletes keep it ordered.
			for i := 0; i < n; i += 7 {
				packed.Set(keyItem{key: items[i].key + "/x"})
				packed.Delete(items[i])
			}
			prev := ""
			count := 0
			packed.Scan(func(it keyItem) bool {
				if it.key <= prev {
					t.Fatalf("order broken at %q after %q", it.key, prev)
				}
				prev = it.key
				count++
				return true
			})
			if count != packed.Len() || count != n {
				t.Fatalf("after edits: scanned %d, Len %d, want %d", count, packed.Len(), n)
			}
		})
	}
}
