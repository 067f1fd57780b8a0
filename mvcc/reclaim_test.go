package mvcc_test

import (
	"bytes"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// reclaimed returns what a store holds once a compaction at rev has been
// physically completed: its key count and size. s is compacted at rev.
func reclaimed(t *testing.T, s *mvcc.Store, rev int64) (keys int, size int64) {
	t.Helper()
	<-must(s.Compact(rev))
	return s.Len(), s.Size()
}

// A compaction applied after a Restore that abandoned the reclaiming of an
// earlier one is itself reclaimed, and its channel closes only once it is.
func TestCompactAfterRestoreIsReclaimed(t *testing.T) {
	src := newStore(t)
	fill(t, src, 2000)
	snap := snapshotBytes(t, src) // never compacted: full history
	wantKeys, wantSize := reclaimed(t, src, src.Revision())

	// A store large enough that its reclaimer is still at work when the
	// small snapshot, decoded before Restore takes the lock, replaces it.
	s := newStore(t)
	fill(t, s, 400000)
	must(s.Compact(s.Revision()))
	if err := s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	<-must(s.Compact(s.Revision()))
	if s.Len() != wantKeys || s.Size() != wantSize {
		t.Fatalf("after the compaction's channel closed: %d keys, %d bytes; fully reclaimed %d keys, %d bytes", s.Len(), s.Size(), wantKeys, wantSize)
	}
}
