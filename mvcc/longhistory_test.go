package mvcc_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// longHistory is one key written thousands of times, with a delete every
// 300 writes, beside a second key; states[r] is what a read of the hot key
// at revision r must return (nil: missing).
type longHistory struct {
	s      *mvcc.Store
	states map[int64]*mvcc.KeyValue
}

func newLongHistory(t *testing.T, writes int) *longHistory {
	t.Helper()
	h := &longHistory{s: newStore(t), states: map[int64]*mvcc.KeyValue{1: nil}}
	var cur *mvcc.KeyValue
	for i := 1; i <= writes; i++ {
		switch {
		case i%300 == 0:
			del(t, h.s, "hot", "")
			cur = nil
		case i%10 == 0:
			put(t, h.s, "other", fmt.Sprint(i)) // the hot key is unchanged
		default:
			_, events, err := h.s.Put(&mvcc.PutRequest{Key: []byte("hot"), Value: fmt.Appendf(nil, "value-%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			cur = &events[0].KV
		}
		h.states[h.s.Revision()] = cur
	}
	return h
}

// check compares every read path of s on the hot key with the states, for
// revisions from the compact revision on.
func (h *longHistory) check(t *testing.T, s *mvcc.Store) {
	t.Helper()
	from := max(s.CompactRevision(), 1)
	for rev := from; rev <= s.Revision(); rev++ {
		res := get(t, s, mvcc.RangeRequest{Key: []byte("hot"), Revision: rev})
		want := h.states[rev]
		if (want == nil) != (len(res.KVs) == 0) || (want != nil && !reflect.DeepEqual(res.KVs[0], *want)) {
			t.Fatalf("read at %d (compacted at %d): %+v, want %+v", rev, s.CompactRevision(), res.KVs, want)
		}
	}
	hist, err := s.History(mvcc.HistoryRequest{Key: []byte("hot"), From: from})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rev := from; rev <= s.Revision(); rev++ {
		now, before := h.states[rev], h.states[rev-1]
		if now == before {
			continue // revision 1, or a write to the other key
		}
		if i == len(hist.Events) {
			t.Fatalf("history from %d ends before revision %d", from, rev)
		}
		ev := hist.Events[i]
		i++
		if ev.KV.ModRevision != rev || (ev.Type == mvcc.EventDelete) != (now == nil) {
			t.Fatalf("history event %d: %v at %d, want revision %d", i, ev.Type, ev.KV.ModRevision, rev)
		}
		// The previous version is held unless it is at or below the compact
		// revision and this event is too.
		wantPrev := before
		if s.CompactRevision() > 0 && rev <= s.CompactRevision() {
			wantPrev = nil
		}
		if !reflect.DeepEqual(ev.PrevKV, wantPrev) {
			t.Fatalf("history event at %d: PrevKV %+v, want %+v", rev, ev.PrevKV, wantPrev)
		}
	}
	if i != len(hist.Events) {
		t.Fatalf("history from %d has %d events, want %d", from, len(hist.Events), i)
	}
}

// TestLongHistory takes one key across many chunks of its version list and
// checks reads at every revision, history with PrevKV, hashes, snapshots and
// Size through a series of compactions that cut chunks at various points,
// at tombstones and at chunk boundaries.
func TestLongHistory(t *testing.T) {
	h := newLongHistory(t, 2600)
	h.check(t, h.s)
	for _, rev := range []int64{200, 301, 302, 511, 512, 700, 1023, 1801, 2222, h.s.Revision()} {
		done, err := h.s.Compact(rev)
		if err != nil {
			t.Fatal(err)
		}
		h.check(t, h.s) // physical compaction may be in progress
		logical := must(h.s.Hash(0))
		<-done
		h.check(t, h.s)
		if physical := must(h.s.Hash(0)); physical != logical {
			t.Fatalf("compacted at %d: hash %x during physical compaction, %x after", rev, logical, physical)
		}
		restored := newStore(t)
		if err := restored.Restore(bytes.NewReader(snapshotBytes(t, h.s))); err != nil {
			t.Fatal(err)
		}
		h.check(t, restored)
		for _, at := range []int64{rev, (rev + h.s.Revision()) / 2, 0} {
			h1, err1 := h.s.Hash(at)
			h2, err2 := restored.Hash(at)
			if err1 != nil || err2 != nil || h1 != h2 {
				t.Fatalf("compacted at %d: hash at %d %x %v, restored %x %v", rev, at, h1, err1, h2, err2)
			}
		}
		// A hash at an older revision is the hash of the store as it was
		// then, compacted the same way.
		mid := (rev + h.s.Revision()) / 2
		then := newLongHistory(t, int(mid-1)).s
		if _, err := then.Compact(rev); err != nil {
			t.Fatal(err)
		}
		if h1, h2 := must(h.s.Hash(mid)), must(then.Hash(0)); h1 != h2 {
			t.Fatalf("compacted at %d: hash at %d %x, of the store stopped there %x", rev, mid, h1, h2)
		}
		if h.s.Size() != restored.Size() {
			t.Fatalf("compacted at %d: size %d, restored from its snapshot %d", rev, h.s.Size(), restored.Size())
		}
	}
}
