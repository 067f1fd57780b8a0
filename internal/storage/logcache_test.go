package storage

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// countingStore counts the reads that reach the store behind the cache.
type countingStore struct {
	raft.LogStore
	reads int
}

func (s *countingStore) GetLog(index uint64, log *raft.Log) error {
	s.reads++
	return s.LogStore.GetLog(index, log)
}

func entry(index uint64, size int) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(index)}, size)}
}

// cachedRead reads index through c and reports whether the cache answered;
// the entry must come back right either way.
func cachedRead(t *testing.T, c *logCache, store *countingStore, index uint64, size int) bool {
	t.Helper()
	before := store.reads
	var l raft.Log
	if err := c.GetLog(index, &l); err != nil {
		t.Fatalf("entry %d: %v", index, err)
	}
	if l.Index != index || !bytes.Equal(l.Data, entry(index, size).Data) {
		t.Fatalf("entry %d: read index %d, %d bytes", index, l.Index, len(l.Data))
	}
	return store.reads == before
}

// TestLogCacheBounds stores entries through the cache and reads them back:
// the newest stay cached within both the entry and the byte bound, older
// ones come from the store, and every read returns the entry.
func TestLogCacheBounds(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		entries, maxBytes, size int
		stored                  uint64
		cached                  uint64 // how many of the newest stay cached
	}{
		{"entry bound, ring wrapped", 16, 1 << 20, 10, 100, 16},
		{"byte bound", 16, 4 << 10, 1 << 10, 100, 4},
		{"one entry larger than the bound stays", 16, 100, 1 << 10, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &countingStore{LogStore: raft.NewInmemStore()}
			c := newLogCache(store, tc.entries, tc.maxBytes)
			for i := uint64(1); i <= tc.stored; i += 3 { // batches of up to 3
				var batch []*raft.Log
				for j := i; j < i+3 && j <= tc.stored; j++ {
					batch = append(batch, entry(j, tc.size))
				}
				if err := c.StoreLogs(batch); err != nil {
					t.Fatal(err)
				}
			}
			for i := uint64(1); i <= tc.stored; i++ {
				want := i > tc.stored-tc.cached
				if got := cachedRead(t, c, store, i, tc.size); got != want {
					t.Errorf("entry %d of %d: cached %v, want %v", i, tc.stored, got, want)
				}
			}
			if c.bytes != int(tc.cached)*tc.size {
				t.Errorf("cache accounts %d bytes, holds %d", c.bytes, int(tc.cached)*tc.size)
			}
		})
	}
}

// TestLogCacheCopiesEntries checks that the cache keeps its own copy of
// each raft.Log (raft's own cache kept the pointer, which on a leader
// points into the entry's future), and that DeleteRange, which raft uses
// to drop a compacted prefix or a conflicting suffix, empties it.
func TestLogCacheCopiesEntries(t *testing.T) {
	store := &countingStore{LogStore: raft.NewInmemStore()}
	c := newLogCache(store, 8, 1<<20)
	l := entry(1, 10)
	if err := c.StoreLogs([]*raft.Log{l, entry(2, 10)}); err != nil {
		t.Fatal(err)
	}
	*l = raft.Log{Index: 99, Data: []byte("reused by its owner")}
	if !cachedRead(t, c, store, 1, 10) {
		t.Fatal("entry 1 not cached")
	}
	*l = *entry(1, 10) // raft's InmemStore, behind the cache, keeps the pointer
	if err := c.DeleteRange(2, 2); err != nil {
		t.Fatal(err)
	}
	if cachedRead(t, c, store, 1, 10) {
		t.Fatal("entry 1 still cached after DeleteRange")
	}
	var got raft.Log
	if err := c.GetLog(2, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("deleted entry 2: %v, want ErrLogNotFound", err)
	}
}

// failingStore refuses every append.
type failingStore struct{ raft.LogStore }

var errRefused = errors.New("refused")

func (failingStore) StoreLogs([]*raft.Log) error { return errRefused }

// TestLogCacheCachesOnlyStored: an append the store refused is not cached
// (raft would otherwise read back an entry the log does not have), and the
// store's error is wrapped, not flattened.
func TestLogCacheCachesOnlyStored(t *testing.T) {
	c := newLogCache(failingStore{raft.NewInmemStore()}, 8, 1<<20)
	if err := c.StoreLogs([]*raft.Log{entry(1, 10)}); !errors.Is(err, errRefused) {
		t.Fatalf("StoreLogs: %v, want the store's error", err)
	}
	var l raft.Log
	if err := c.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("refused entry read back: %v, %s", err, fmt.Sprint(l.Index))
	}
}
