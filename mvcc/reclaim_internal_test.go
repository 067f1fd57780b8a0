package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// halfReclaimed returns a store with the writes of write, compacted at
// compactAt(store) with only the first batches batches of keys reclaimed,
// and no reclaimer running: the state of a replica whose reclaimer is
// midway, held still.
func halfReclaimed(t *testing.T, write func(*Store), compactAt func(*Store) int64, batches int) *Store {
	t.Helper()
	s := New(Config{})
	t.Cleanup(func() { s.Close() })
	write(s)
	rev := compactAt(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.compactLogically(rev); err != nil {
		t.Fatal(err)
	}
	var changed []keyItem
	after, more := "", true
	for i := 0; i < batches && more; i++ {
		after, more, changed = s.compactBatch(rev, after, i == 0, changed[:0])
	}
	if !more {
		t.Fatalf("reclaiming finished in %d batches: the store is too small to be caught midway", batches)
	}
	return s
}

// compactFully compacts s at rev and waits until it is reclaimed.
func compactFully(t *testing.T, s *Store, rev int64) {
	t.Helper()
	done, err := s.Compact(rev)
	if err != nil {
		t.Fatal(err)
	}
	<-done
}

// reclaimWrites puts, overwrites and deletes keys so that every kind of
// leftover exists: older versions of live keys, whole deleted generations
// below the compact revision, and a delete at exactly it.
func reclaimWrites(s *Store) {
	for round := range 3 {
		for i := range 3000 {
			key := fmt.Appendf(nil, "key/%05d", i)
			switch {
			case i%5 == 0 && round == 1:
				s.DeleteRange(&DeleteRequest{Key: key})
			default:
				s.Put(&PutRequest{Key: key, Value: fmt.Appendf(nil, "v%d-%d", round, i)})
			}
		}
	}
	for i := range 3000 {
		if i%7 == 0 {
			s.DeleteRange(&DeleteRequest{Key: fmt.Appendf(nil, "key/%05d", i)})
		}
	}
}

// reclaimProbe is everything a client can observe of a store at revisions
// from the compact revision up: reads (plain, filtered, sorted, counted),
// history with prev kvs, hashes and the serialized snapshot.
type reclaimProbe struct {
	ranges    [][]KeyValue
	counts    []int64
	history   []Event
	hashes    []uint32
	snapshot  []byte
	compacted error
}

func probeStore(t *testing.T, s *Store) reclaimProbe {
	t.Helper()
	var p reclaimProbe
	all := func(r RangeRequest) *RangeResult {
		r.Key, r.End = []byte{0}, []byte{0}
		res, err := s.Range(&r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	compact, current := s.CompactRevision(), s.Revision()
	for rev := compact; rev <= current; rev += max(1, (current-compact)/40) {
		p.ranges = append(p.ranges, all(RangeRequest{Revision: rev}).KVs)
		p.ranges = append(p.ranges, all(RangeRequest{Revision: rev, SortTarget: SortByModRevision, SortOrder: SortDescend, Limit: 50}).KVs)
		p.ranges = append(p.ranges, all(RangeRequest{Revision: rev, MaxModRevision: compact + 1}).KVs)
		p.counts = append(p.counts, all(RangeRequest{Revision: rev, CountOnly: true}).Count)
		h, err := s.Hash(rev)
		if err != nil {
			t.Fatal(err)
		}
		p.hashes = append(p.hashes, h)
	}
	hist, err := s.History(HistoryRequest{Key: []byte{0}, End: []byte{0}, From: compact})
	if err != nil {
		t.Fatal(err)
	}
	p.history = hist.Events
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	p.snapshot = buf.Bytes()
	_, p.compacted = s.Range(&RangeRequest{Key: []byte("key/00001"), Revision: compact - 1})
	return p
}

func sameProbes(t *testing.T, what string, got, want reclaimProbe) {
	t.Helper()
	switch {
	case !reflect.DeepEqual(got.ranges, want.ranges), !reflect.DeepEqual(got.counts, want.counts):
		t.Fatalf("%s: reads differ from the fully reclaimed store's", what)
	case !reflect.DeepEqual(got.history, want.history):
		t.Fatalf("%s: history differs from the fully reclaimed store's", what)
	case !reflect.DeepEqual(got.hashes, want.hashes):
		t.Fatalf("%s: hashes %v, fully reclaimed %v", what, got.hashes, want.hashes)
	case !bytes.Equal(got.snapshot, want.snapshot):
		t.Fatalf("%s: snapshot of %d bytes differs from the fully reclaimed store's (%d bytes)", what, len(got.snapshot), len(want.snapshot))
	case !errors.Is(got.compacted, ErrCompacted) || !errors.Is(want.compacted, ErrCompacted):
		t.Fatalf("%s: a read below the compact revision: %v, fully reclaimed %v", what, got.compacted, want.compacted)
	}
}

// The versions a compaction dropped but the reclaimer has not reached yet
// are never observable: a store caught midway answers every read, history,
// hash and snapshot exactly as one that reclaimed everything, before and
// after further writes on the keys that still hold leftovers.
func TestReclaimingIsInvisible(t *testing.T) {
	compactAt := func(s *Store) int64 { return s.Revision() - 200 }
	midway := halfReclaimed(t, reclaimWrites, compactAt, 1)
	full := New(Config{})
	t.Cleanup(func() { full.Close() })
	reclaimWrites(full)
	compactFully(t, full, compactAt(full))
	if midway.Size() <= full.Size() || midway.Len() <= full.Len() {
		t.Fatalf("the midway store holds no leftovers (%d keys, %d bytes; reclaimed %d keys, %d bytes)", midway.Len(), midway.Size(), full.Len(), full.Size())
	}
	sameProbes(t, "midway", probeStore(t, midway), probeStore(t, full))

	// Writes on keys with leftovers: puts over old versions, a re-create
	// of a key whose deleted generation is still held, deletes.
	for _, s := range []*Store{midway, full} {
		for i := 0; i < 3000; i += 3 {
			key := fmt.Appendf(nil, "key/%05d", i)
			if i%2 == 0 {
				s.Put(&PutRequest{Key: key, Value: []byte("after"), PrevKV: true})
			} else {
				s.DeleteRange(&DeleteRequest{Key: key, PrevKV: true})
			}
		}
	}
	sameProbes(t, "midway, after writes", probeStore(t, midway), probeStore(t, full))

	// Reclaiming the rest brings the held bytes and keys to the same figures.
	compactFully(t, midway, midway.Revision())
	compactFully(t, full, full.Revision())
	if midway.Size() != full.Size() || midway.Len() != full.Len() {
		t.Fatalf("once reclaimed: %d keys, %d bytes; the other store %d keys, %d bytes", midway.Len(), midway.Size(), full.Len(), full.Size())
	}
	sameProbes(t, "both reclaimed", probeStore(t, midway), probeStore(t, full))
}
