package mvcc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"reflect"
	"sync"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

func fill(t testing.TB, s *mvcc.Store, n int) {
	t.Helper()
	for i := range n {
		put(t, s, fmt.Sprintf("key/%05d", i%(n/2+1)), fmt.Sprintf("value-%d", i))
		if i%7 == 0 {
			del(t, s, fmt.Sprintf("key/%05d", (i*13)%(n/2+1)), "")
		}
	}
}

func snapshotBytes(t testing.TB, s *mvcc.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func all(t testing.TB, s *mvcc.Store, rev int64) []mvcc.KeyValue {
	return get(t, s, mvcc.RangeRequest{Key: []byte{0}, End: []byte{0}, Revision: rev}).KVs
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := newStore(t)
	fill(t, s, 500)
	if _, err := s.Compact(s.Revision() - 100); err != nil {
		t.Fatal(err)
	}
	data := snapshotBytes(t, s)
	r := newStore(t)
	put(t, r, "to-be-replaced", "x")
	if err := r.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if r.Revision() != s.Revision() || r.CompactRevision() != s.CompactRevision() {
		t.Fatalf("restored at %d/%d, want %d/%d", r.Revision(), r.CompactRevision(), s.Revision(), s.CompactRevision())
	}
	for rev := s.CompactRevision(); rev <= s.Revision(); rev++ {
		if !reflect.DeepEqual(all(t, s, rev), all(t, r, rev)) {
			t.Fatalf("state at %d differs", rev)
		}
		h1, _ := s.Hash(rev)
		h2, _ := r.Hash(rev)
		if h1 != h2 {
			t.Fatalf("hash at %d differs", rev)
		}
	}
	h1, _ := s.History(mvcc.HistoryRequest{Key: []byte{0}, End: []byte{0}, From: s.CompactRevision()})
	h2, _ := r.History(mvcc.HistoryRequest{Key: []byte{0}, End: []byte{0}, From: s.CompactRevision()})
	if !reflect.DeepEqual(h1, h2) {
		t.Fatal("history differs after restore")
	}
	// Deterministic: the same state serializes to the same bytes.
	if !bytes.Equal(data, snapshotBytes(t, r)) {
		t.Fatal("a restored store serializes differently")
	}
	// A compaction that was never physically done still restores compacted.
	_, err := r.Range(&mvcc.RangeRequest{Key: []byte("key/00001"), Revision: s.CompactRevision() - 1})
	wantErr(t, err, mvcc.ErrCompacted)
}

func TestSnapshotRejectsCorruption(t *testing.T) {
	s := newStore(t)
	fill(t, s, 100)
	good := snapshotBytes(t, s)
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	badVersion := bytes.Clone(good)
	badVersion[7] = 99
	cases := map[string][]byte{
		"empty":            nil,
		"bad magic":        flip(0),
		"unknown version":  badVersion,
		"bit flip in data": flip(len(good) / 2),
		"bit flip in crc":  flip(len(good) - 1),
		"truncated":        good[:len(good)/2],
		"no checksum":      good[:len(good)-4],
		"trailing data":    append(bytes.Clone(good), 0),
	}
	for name, data := range cases {
		r := newStore(t)
		put(t, r, "keep", "me")
		before := snapshotBytes(t, r)
		err := r.Restore(bytes.NewReader(data))
		if !errors.Is(err, mvcc.ErrCorruptSnapshot) {
			t.Errorf("%s: error %v, want ErrCorruptSnapshot", name, err)
		}
		if !bytes.Equal(before, snapshotBytes(t, r)) {
			t.Errorf("%s: failed restore changed the store", name)
		}
	}
	// A reader's own error is reported as such.
	boom := errors.New("disk on fire")
	err := newStore(t).Restore(io.MultiReader(bytes.NewReader(good[:50]), errReader{boom}))
	if !errors.Is(err, boom) {
		t.Fatalf("read error: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// slowWriter yields on every write so that writers run during serialization.
type slowWriter struct {
	buf   bytes.Buffer
	yield func()
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.yield()
	return w.buf.Write(p)
}

// TestSnapshotIsPointInTime serializes a snapshot while other goroutines
// put, delete and compact, then checks that the restored snapshot holds
// exactly the state at the snapshot's revision. Run with -race: a write that
// reached shared memory would show as a data race as well as a difference.
func TestSnapshotIsPointInTime(t *testing.T) {
	s := newStore(t)
	fill(t, s, 20000)
	snap := s.Snapshot()
	want := all(t, s, snap.Revision())
	wantHash, err := s.Hash(snap.Revision())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("key/%05d", (i*31+g)%10001)
				s.Put(&mvcc.PutRequest{Key: []byte(key), Value: []byte("overwritten")})
				if i%5 == 0 {
					s.DeleteRange(&mvcc.DeleteRequest{Key: []byte(key)})
				}
				if i%500 == 0 {
					s.Compact(s.Revision() - 10)
				}
			}
		}()
	}
	w := &slowWriter{yield: func() {
		s.Put(&mvcc.PutRequest{Key: []byte("key/00000"), Value: []byte("from the writer")})
	}}
	if _, err := snap.WriteTo(w); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	r := newStore(t)
	if err := r.Restore(&w.buf); err != nil {
		t.Fatal(err)
	}
	if r.Revision() != snap.Revision() {
		t.Fatalf("restored revision %d, want %d", r.Revision(), snap.Revision())
	}
	if got := all(t, r, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state differs from the state at revision %d (%d vs %d keys)", snap.Revision(), len(got), len(want))
	}
	if h, _ := r.Hash(0); h != wantHash {
		t.Fatal("restored hash differs")
	}
}

func TestHistoryLimitKeepsRevisionsWhole(t *testing.T) {
	s := newStore(t)
	for i := range 10 {
		// Each txn writes three keys in one revision.
		_, _, err := s.Txn(&mvcc.TxnRequest{Then: []mvcc.Op{
			opPut(fmt.Sprint("z", i), "v"), opPut(fmt.Sprint("a", i), "v"), opPut(fmt.Sprint("m", i), "v"),
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	from := int64(1)
	var got []mvcc.Event
	for from <= s.Revision() {
		res, err := s.History(mvcc.HistoryRequest{Key: []byte{0}, End: []byte{0}, From: from, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events)%3 != 0 || res.Next <= from {
			t.Fatalf("from %d: %d events, next %d: a revision was split", from, len(res.Events), res.Next)
		}
		got = append(got, res.Events...)
		from = res.Next
	}
	if len(got) != 30 {
		t.Fatalf("%d events, want 30", len(got))
	}
	for i, ev := range got {
		wantKey := fmt.Sprint([]string{"z", "a", "m"}[i%3], i/3)
		if string(ev.KV.Key) != wantKey || ev.KV.ModRevision != int64(i/3+2) || ev.Sub != int64(i%3) {
			t.Fatalf("event %d: %s@%d.%d, want %s (txn op order)", i, ev.KV.Key, ev.KV.ModRevision, ev.Sub, wantKey)
		}
	}
	// Rule 21: events at exactly the compact revision come without prev kv,
	// a delete at the compact revision is gone, and below is compacted.
	put(t, s, "a0", "again")
	rev := s.Revision()
	<-must(s.Compact(rev))
	res, err := s.History(mvcc.HistoryRequest{Key: []byte("a0"), From: rev})
	if err != nil || len(res.Events) != 1 || res.Events[0].PrevKV != nil {
		t.Fatalf("history at the compact revision: %+v %v", res, err)
	}
	_, err = s.History(mvcc.HistoryRequest{Key: []byte("a0"), From: rev - 1})
	wantErr(t, err, mvcc.ErrCompacted)
	del(t, s, "a0", "")
	put(t, s, "a1", "x")
	res, err = s.History(mvcc.HistoryRequest{Key: []byte("a"), End: []byte("b"), From: rev + 1})
	if err != nil || len(res.Events) != 2 || res.Events[1].PrevKV == nil || string(res.Events[1].PrevKV.Value) != "v" {
		t.Fatalf("prev kv older than the compact revision survives: %+v %v", res, err)
	}
	<-must(s.Compact(rev + 1)) // the delete of a0 stays in history, without prev kv
	res, _ = s.History(mvcc.HistoryRequest{Key: []byte("a0"), From: rev + 1})
	if len(res.Events) != 1 || res.Events[0].Type != mvcc.EventDelete || res.Events[0].PrevKV != nil {
		t.Fatalf("a delete at the compact revision: %+v", res.Events)
	}
	<-must(s.Compact(rev + 2)) // and the next compaction removes it
	if res, _ = s.History(mvcc.HistoryRequest{Key: []byte("a0"), From: rev + 2}); len(res.Events) != 0 {
		t.Fatalf("history after the next compaction: %+v", res.Events)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestCompactionDoesNotChangeReads compacts a large store in the background
// while checking that reads at and above the compact revision never change.
func TestCompactionDoesNotChangeReads(t *testing.T) {
	s := newStore(t)
	fill(t, s, 30000)
	rev := s.Revision() - 5000
	want := all(t, s, rev)
	wantHash, _ := s.Hash(0)
	done, err := s.Compact(rev)
	if err != nil {
		t.Fatal(err)
	}
	for compacting := true; compacting; {
		select {
		case <-done:
			compacting = false
		default:
		}
		if got := all(t, s, rev); !reflect.DeepEqual(got, want) {
			t.Fatal("read at the compact revision changed during compaction")
		}
		put(t, s, "writer/during", "compaction") // writers are not blocked
	}
	// The writes above changed the hash; check compaction alone did not.
	if h, _ := s.Hash(s.Revision() - 0); h == wantHash {
		t.Fatal("hash should reflect the writes")
	}
	if sizeAfter := s.Size(); sizeAfter <= 0 {
		t.Fatal("size accounting went negative")
	}
}

func TestSizeAccounting(t *testing.T) {
	s := newStore(t)
	if s.Size() != 0 {
		t.Fatalf("empty store size %d", s.Size())
	}
	put(t, s, "k", "12345")
	one := s.Size()
	put(t, s, "k", "12345")
	two := s.Size()
	versionCost := two - one
	if versionCost <= 5 || one-versionCost <= 1 {
		t.Fatalf("sizes %d then %d: a version costs %d, a key %d", one, two, versionCost, one-versionCost)
	}
	<-must(s.Compact(s.Revision()))
	if s.Size() != one {
		t.Fatalf("after compaction size %d, want %d (one version)", s.Size(), one)
	}
	del(t, s, "k", "")
	put(t, s, "x", "12345") // the delete is now below the compact revision
	<-must(s.Compact(s.Revision()))
	if s.Size() != one || s.Len() != 1 {
		t.Fatalf("after deleting k and compacting: size %d (want %d), keys %d", s.Size(), one, s.Len())
	}
}

func TestClosedStore(t *testing.T) {
	s := mvcc.New(mvcc.Config{})
	fill(t, s, 5000)
	done := must(s.Compact(s.Revision() - 1))
	s.Close()
	<-done // abandoned compaction releases its waiters
	s.Close()
	_, err := s.Range(&mvcc.RangeRequest{Key: []byte("a")})
	wantErr(t, err, mvcc.ErrClosed)
	_, _, err = s.Put(&mvcc.PutRequest{Key: []byte("a")})
	wantErr(t, err, mvcc.ErrClosed)
}

// snapshotOf writes the snapshot format by hand (the layout documented in
// snapshot.go) for one key "k" at revision rev, never compacted, with the
// given versions: each main, create, version; a version of 0 is a
// tombstone.
func snapshotOf(rev int64, versions ...[3]int64) []byte {
	b := append([]byte("KVSMVCC"), 1)
	b = binary.AppendUvarint(b, uint64(rev))
	b = binary.AppendVarint(b, -1)
	b = binary.AppendUvarint(b, 2)
	b = append(b, 'k')
	b = binary.AppendUvarint(b, uint64(len(versions)))
	for _, v := range versions {
		for _, x := range []int64{v[0], 0, v[1], v[2], 0} {
			b = binary.AppendUvarint(b, uint64(x))
		}
		if v[2] == 0 {
			b = binary.AppendUvarint(b, 0)
		} else {
			b = binary.AppendUvarint(b, 1)
			b = append(b, 'v')
		}
	}
	b = binary.AppendUvarint(b, 0)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// TestSnapshotRejectsInconsistentVersions: records do not hold their create
// revision and version number (they follow from their place in the
// generation), so a snapshot whose numbers do not follow that way is
// corrupt, checksum or not; one whose first kept version began its
// generation earlier (a compacted key) restores with its numbers.
func TestSnapshotRejectsInconsistentVersions(t *testing.T) {
	good := snapshotOf(20, [3]int64{5, 2, 4}, [3]int64{6, 2, 5}, [3]int64{8, 0, 0}, [3]int64{9, 9, 1}, [3]int64{12, 9, 2})
	r := newStore(t)
	if err := r.Restore(bytes.NewReader(good)); err != nil {
		t.Fatalf("a consistent snapshot: %v", err)
	}
	kvs := get(t, r, mvcc.RangeRequest{Key: []byte("k"), Revision: 6}).KVs
	if len(kvs) != 1 || kvs[0].CreateRevision != 2 || kvs[0].Version != 5 || kvs[0].ModRevision != 6 {
		t.Fatalf("at 6: %+v, want create 2, version 5", kvs)
	}
	kvs = get(t, r, mvcc.RangeRequest{Key: []byte("k")}).KVs
	if len(kvs) != 1 || kvs[0].CreateRevision != 9 || kvs[0].Version != 2 {
		t.Fatalf("now: %+v, want create 9, version 2", kvs)
	}
	for name, data := range map[string][]byte{
		"version skips":             snapshotOf(20, [3]int64{5, 2, 4}, [3]int64{6, 2, 6}),
		"create changes":            snapshotOf(20, [3]int64{5, 2, 4}, [3]int64{6, 3, 5}),
		"after a tombstone, not 1":  snapshotOf(20, [3]int64{5, 5, 1}, [3]int64{6, 0, 0}, [3]int64{7, 7, 2}),
		"after a tombstone, create": snapshotOf(20, [3]int64{5, 5, 1}, [3]int64{6, 0, 0}, [3]int64{7, 6, 1}),
		"version 1 created earlier": snapshotOf(20, [3]int64{5, 3, 1}),
		"created later":             snapshotOf(20, [3]int64{5, 6, 2}),
		"more versions than revs":   snapshotOf(20, [3]int64{5, 3, 4}),
	} {
		r := newStore(t)
		if err := r.Restore(bytes.NewReader(data)); !errors.Is(err, mvcc.ErrCorruptSnapshot) {
			t.Errorf("%s: error %v, want ErrCorruptSnapshot", name, err)
		}
	}
}
