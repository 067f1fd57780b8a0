package mvcc_test

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

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

// Reads, writes, hashes and snapshots running beside two compactions, the
// second issued while the first is being reclaimed, see at every moment what
// a store that reclaimed everything at once sees. Run it with -race.
func TestCompactionUnderConcurrentLoad(t *testing.T) {
	const n = 60000
	s, ref := newStore(t), newStore(t)
	fill(t, s, n)
	fill(t, ref, n)
	revA := s.Revision()
	r1, r2 := revA-n/3, revA-n/12
	wantAtR2, wantAtA := all(t, ref, r2), all(t, ref, revA)
	<-must(ref.Compact(r2))
	wantHash := must(ref.Hash(revA))

	stop, compactedR2 := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	// loop runs step from start until stop, at least once.
	loop := func(name string, start <-chan struct{}, step func() error) {
		wg.Go(func() {
			<-start
			for {
				if err := step(); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	now := make(chan struct{})
	close(now)
	for r := range 2 {
		loop(fmt.Sprint("reader ", r), now, func() error {
			for _, c := range []struct {
				rev  int64
				want []mvcc.KeyValue
			}{{r2, wantAtR2}, {revA, wantAtA}} {
				res, err := s.Range(&mvcc.RangeRequest{Key: []byte{0}, End: []byte{0}, Revision: c.rev})
				if err != nil {
					return err
				}
				if !reflect.DeepEqual(res.KVs, c.want) {
					return fmt.Errorf("read at %d changed", c.rev)
				}
			}
			return nil
		})
	}
	// The writer makes the same writes on ref, whose compaction is done,
	// so that at the end no write made during reclaiming may be missing.
	i := 0
	loop("writer", now, func() error {
		i++
		key := []byte(fmt.Sprintf("key/%05d", i*37%(n/2)))
		for _, st := range []*mvcc.Store{s, ref} {
			if i%5 == 0 {
				if _, _, err := st.DeleteRange(&mvcc.DeleteRequest{Key: key, PrevKV: true}); err != nil {
					return err
				}
				continue
			}
			_, _, err := st.Txn(&mvcc.TxnRequest{
				Compares: []mvcc.Compare{{Key: key, Target: mvcc.CompareVersion, Result: mvcc.CompareGreater}},
				Then:     []mvcc.Op{{Put: &mvcc.PutRequest{Key: key, Value: []byte(fmt.Sprint("then/", i)), PrevKV: true}}},
				Else:     []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte(fmt.Sprint("new/", i)), Value: []byte("else")}}},
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	loop("hasher", compactedR2, func() error {
		if h, err := s.Hash(revA); err != nil || h != wantHash {
			return fmt.Errorf("hash at %d: %d, %v; fully reclaimed %d", revA, h, err, wantHash)
		}
		return nil
	})
	loop("snapshotter", compactedR2, func() error {
		var buf bytes.Buffer
		if _, err := s.Snapshot().WriteTo(&buf); err != nil {
			return err
		}
		restored := mvcc.New(mvcc.Config{})
		defer restored.Close()
		if err := restored.Restore(&buf); err != nil {
			return err
		}
		if h, err := restored.Hash(revA); err != nil || h != wantHash {
			return fmt.Errorf("restored snapshot's hash at %d: %d, %v; fully reclaimed %d", revA, h, err, wantHash)
		}
		return nil
	})

	done1 := must(s.Compact(r1))
	done2 := must(s.Compact(r2))
	close(compactedR2)
	for _, rev := range []int64{r1 - 1, r2 - 1} {
		_, err := s.Range(&mvcc.RangeRequest{Key: []byte("key/00001"), Revision: rev})
		wantErr(t, err, mvcc.ErrCompacted)
	}
	<-done2
	<-done1 // closed no later than the later compaction's
	close(stop)
	wg.Wait()
	if h := must(s.Hash(revA)); h != wantHash {
		t.Fatalf("hash at %d after reclaiming: %d, want %d", revA, h, wantHash)
	}
	if s.Revision() != ref.Revision() || !reflect.DeepEqual(all(t, s, 0), all(t, ref, 0)) {
		t.Fatalf("after reclaiming, the store at %d differs from one that made the same writes after reclaiming (at %d)", s.Revision(), ref.Revision())
	}
	if must(s.Hash(0)) != must(ref.Hash(0)) {
		t.Fatal("after reclaiming, the current hash differs from that of a store that made the same writes after reclaiming")
	}
}

// Close stops the reclaimer in the middle of its work, closes the channels
// of the compactions it abandons, and leaves no goroutine behind.
func TestCloseStopsReclaimer(t *testing.T) {
	s := mvcc.New(mvcc.Config{})
	fill(t, s, 200000)
	done := must(s.Compact(s.Revision()))
	s.Close()
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "mvcc.(*Store).reclaim") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a reclaimer goroutine outlived Close:\n%s", stacks)
		}
		runtime.Gosched()
	}
}
