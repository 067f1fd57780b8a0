package mvcc_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// state is everything a reader of s can see at the revisions from..to.
type state struct {
	rev, compactRev int64
	keys, live      int
	size            int64
	hash            uint32
	at              map[int64][]mvcc.KeyValue
	history         mvcc.HistoryResult
}

func stateOf(t *testing.T, s *mvcc.Store, from, to int64) state {
	t.Helper()
	st := state{
		rev: s.Revision(), compactRev: s.CompactRevision(), keys: s.Len(), live: s.LiveKeys(),
		size: s.Size(), hash: must(s.Hash(0)), at: map[int64][]mvcc.KeyValue{},
	}
	for rev := from; rev <= to; rev += max((to-from)/20, 1) {
		st.at[rev] = all(t, s, rev)
	}
	st.history = must(s.History(mvcc.HistoryRequest{Key: []byte{0}, End: []byte{0}, From: from}))
	return st
}

// Defragment changes nothing a reader sees: reads at every revision since
// the compaction, history, hash, sizes; and the store takes writes,
// deletes and compactions afterwards as one never defragmented does.
func TestDefragmentKeepsState(t *testing.T) {
	s, ref := newStore(t), newStore(t)
	for _, st := range []*mvcc.Store{s, ref} {
		fill(t, st, 20000)
		<-must(st.Compact(st.Revision() - 5000))
	}
	from := s.CompactRevision()
	want := stateOf(t, s, from, s.Revision())
	if err := s.Defragment(); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, s, from, s.Revision()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after Defragment the store reads differently")
	}
	for _, st := range []*mvcc.Store{s, ref} {
		for i := range 3000 {
			put(t, st, fmt.Sprintf("key/%05d", i*3), "after")
			if i%5 == 0 {
				del(t, st, fmt.Sprintf("key/%05d", i*7), "")
			}
		}
		<-must(st.Compact(st.Revision() - 1000))
	}
	from = s.CompactRevision()
	if got, want := stateOf(t, s, from, s.Revision()), stateOf(t, ref, from, ref.Revision()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after writes and a compaction the defragmented store differs from one never defragmented")
	}
}

// A Snapshot taken before Defragment keeps reading its own point in time,
// through writes made after the Defragment, and serializes as it would
// have without it.
func TestDefragmentKeepsSnapshots(t *testing.T) {
	s := newStore(t)
	fill(t, s, 5000)
	snap := s.Snapshot()
	var want bytesBuffer
	must(snap.WriteTo(&want))
	if err := s.Defragment(); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		put(t, s, fmt.Sprintf("key/%05d", i), "later")
	}
	del(t, s, "key/", "key0")
	var got bytesBuffer
	must(snap.WriteTo(&got))
	if string(got) != string(want) {
		t.Fatal("a snapshot taken before Defragment serializes differently after it and later writes")
	}
}

// bytesBuffer is a minimal io.Writer for comparing serializations.
type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

// Defragment running beside a physical compaction in progress, readers at
// fixed revisions and a writer leaves the compaction to finish as it would
// have, every read unchanged, and the writes all there. Run it with -race.
func TestDefragmentUnderConcurrentLoad(t *testing.T) {
	const n = 60000
	s, ref := newStore(t), newStore(t)
	fill(t, s, n)
	fill(t, ref, n)
	rev := s.Revision()
	compactAt := rev - n/4
	wantAt := all(t, ref, rev)
	<-must(ref.Compact(compactAt))
	wantHash := must(ref.Hash(rev))

	reclaimed := must(s.Compact(compactAt))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 3)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := s.Range(&mvcc.RangeRequest{Key: []byte{0}, End: []byte{0}, Revision: rev})
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(res.KVs, wantAt) {
					errs <- fmt.Errorf("a read at %d changed while Defragment ran", rev)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 2000 {
			if _, _, err := s.Put(&mvcc.PutRequest{Key: fmt.Appendf(nil, "new/%05d", i), Value: []byte("v")}); err != nil {
				errs <- err
				return
			}
		}
	})
	for range 3 {
		if err := s.Defragment(); err != nil {
			t.Fatal(err)
		}
	}
	<-reclaimed
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := must(s.Hash(rev)); got != wantHash {
		t.Fatalf("hash at %d after compaction and Defragment = %x, want %x (a store compacted without it)", rev, got, wantHash)
	}
	if got := get(t, s, mvcc.RangeRequest{Key: []byte("new/"), End: []byte("new0"), CountOnly: true}).Count; got != 2000 {
		t.Fatalf("%d of 2000 keys written beside Defragment are there", got)
	}
	for i := range 2000 {
		put(t, ref, fmt.Sprintf("new/%05d", i), "v")
	}
	if s.Len() != ref.Len() || s.Size() != ref.Size() {
		t.Fatalf("reclaimed beside Defragment: %d keys, %d bytes; without it: %d keys, %d bytes", s.Len(), s.Size(), ref.Len(), ref.Size())
	}
}

func TestDefragmentClosed(t *testing.T) {
	s := newStore(t)
	s.Close()
	wantErr(t, s.Defragment(), mvcc.ErrClosed)
}
