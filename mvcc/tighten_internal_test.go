package mvcc

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// loadOrder returns the keys 0..n-1 in the order a load by several writers
// commits them: blocks of 100 ascending keys (one txn each), the blocks of
// every window of 16 (one per writer) in a shuffled order.
func loadOrder(n int) []int {
	const block, writers = 100, 16
	r := rand.New(rand.NewPCG(1, 2))
	order := make([]int, 0, n)
	for lo := 0; lo < n; lo += block * writers {
		var starts []int
		for b := lo; b < min(lo+block*writers, n); b += block {
			starts = append(starts, b)
		}
		r.Shuffle(len(starts), func(i, j int) { starts[i], starts[j] = starts[j], starts[i] })
		for _, b := range starts {
			for i := b; i < min(b+block, n); i++ {
				order = append(order, i)
			}
		}
	}
	return order
}

func heapAlloc() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestInsertsLeaveIndexTight loads a store as writers do and checks that
// Defragment then finds next to nothing to give back: the inserts' own
// passes left the index about as tight as a packed one. Without them
// Defragment frees about as much as TestPackedTreeFill's Load and packed
// figures differ by (33 bytes per key with 32-byte items).
func TestInsertsLeaveIndexTight(t *testing.T) {
	const n = 200_000
	s := New(Config{})
	defer s.Close()
	for _, i := range loadOrder(n) {
		if _, _, err := s.Put(&PutRequest{Key: fmt.Appendf(nil, "/registry/pods/%08d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	loaded := heapAlloc()
	if err := s.Defragment(); err != nil {
		t.Fatal(err)
	}
	freed := float64(loaded-heapAlloc()) / n
	t.Logf("Defragment after the load freed %.1f bytes per key", freed)
	if freed > 12 {
		t.Errorf("Defragment freed %.1f bytes per key after the load, want at most 12: the inserts left the index loose", freed)
	}
	if s.Len() != n {
		t.Fatalf("Len %d, want %d", s.Len(), n)
	}
}

// TestTightenKeepsSnapshots interleaves Snapshots with enough inserts for
// several passes, and updates of the keys the snapshots hold: each snapshot
// still reads as the store was when it was taken.
func TestTightenKeepsSnapshots(t *testing.T) {
	const n = 5 * tightenMinInserts
	s := New(Config{})
	defer s.Close()
	type taken struct {
		snap *Snapshot
		hash uint32
		keys int
	}
	var snaps []taken
	for i := range n {
		key := fmt.Appendf(nil, "k/%08d", i)
		if _, _, err := s.Put(&PutRequest{Key: key, Value: key}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 && i > 0 {
			// An update of an older key: writes into leaves a pass copied.
			old := fmt.Appendf(nil, "k/%08d", i/2)
			if _, _, err := s.Put(&PutRequest{Key: old, Value: []byte("updated")}); err != nil {
				t.Fatal(err)
			}
		}
		if i%1500 == 0 {
			sn := s.Snapshot()
			snaps = append(snaps, taken{sn, sn.hash(sn.rev), i + 1})
		}
	}
	for _, tk := range snaps {
		if got := tk.snap.hash(tk.snap.rev); got != tk.hash {
			t.Errorf("snapshot at revision %d: hash %x, was %x when taken", tk.snap.rev, got, tk.hash)
		}
		if got := tk.snap.tree.Len(); got != tk.keys {
			t.Errorf("snapshot at revision %d: %d keys, want %d", tk.snap.rev, got, tk.keys)
		}
	}
	// The store itself: every key once, in order, with its newest value.
	i := 0
	s.tree.Scan(func(it keyItem) bool {
		if want := fmt.Sprintf("k/%08d", i); it.key != want {
			t.Fatalf("key %d is %q, want %q", i, it.key, want)
		}
		i++
		return true
	})
	if i != n {
		t.Fatalf("scanned %d keys, want %d", i, n)
	}
}
