package mvcc_test

// Benchmarks on a store of 1M keys (20-byte keys, 256-byte values), the
// shape the issue names. Run with:
//
//	go test -run XXX -bench . -benchmem -count 5 ./mvcc
import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvstore/kvstore/mvcc"
)

const benchKeys = 1_000_000

func benchKey(i int) []byte { return fmt.Appendf(nil, "bench/key/%010d", i) } // 20 bytes

var benchValue = bytes.Repeat([]byte("v"), 256)

// loaded returns a fresh store holding benchKeys keys, written in random
// order.
func loaded(b *testing.B) *mvcc.Store {
	b.Helper()
	s := mvcc.New(mvcc.Config{})
	b.Cleanup(func() { s.Close() })
	for _, i := range rand.New(rand.NewPCG(1, 1)).Perm(benchKeys) {
		if _, _, err := s.Put(&mvcc.PutRequest{Key: benchKey(i), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

var shared struct {
	once sync.Once
	s    *mvcc.Store
}

// sharedStore is one loaded store reused by the read-only benchmarks.
func sharedStore(b *testing.B) *mvcc.Store {
	shared.once.Do(func() {
		s := mvcc.New(mvcc.Config{})
		for _, i := range rand.New(rand.NewPCG(1, 1)).Perm(benchKeys) {
			s.Put(&mvcc.PutRequest{Key: benchKey(i), Value: benchValue})
		}
		shared.s = s
	})
	return shared.s
}

func BenchmarkPutRandom(b *testing.B) {
	s := sharedStore(b)
	keys := make([][]byte, 1<<16)
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range keys {
		keys[i] = benchKey(rng.IntN(benchKeys))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := s.Put(&mvcc.PutRequest{Key: keys[i&(len(keys)-1)], Value: benchValue}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRangePoint(b *testing.B) {
	s := sharedStore(b)
	rng := rand.New(rand.NewPCG(3, 3))
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = benchKey(rng.IntN(benchKeys))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		res, err := s.Range(&mvcc.RangeRequest{Key: keys[i&(len(keys)-1)]})
		if err != nil || len(res.KVs) != 1 {
			b.Fatal(err)
		}
	}
}

func BenchmarkRangePointParallel(b *testing.B) {
	s := sharedStore(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 4))
		for pb.Next() {
			if _, err := s.Range(&mvcc.RangeRequest{Key: benchKey(rng.IntN(benchKeys))}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRange100(b *testing.B) {
	s := sharedStore(b)
	rng := rand.New(rand.NewPCG(5, 5))
	b.ReportAllocs()
	for b.Loop() {
		start := rng.IntN(benchKeys - 100)
		res, err := s.Range(&mvcc.RangeRequest{Key: benchKey(start), End: benchKey(start + 100)})
		if err != nil || len(res.KVs) != 100 {
			b.Fatal(err, len(res.KVs))
		}
	}
}

func BenchmarkTxnCompareAndPut(b *testing.B) {
	s := sharedStore(b)
	rng := rand.New(rand.NewPCG(6, 6))
	b.ReportAllocs()
	for b.Loop() {
		k := benchKey(rng.IntN(benchKeys))
		_, _, err := s.Txn(&mvcc.TxnRequest{
			Compares: []mvcc.Compare{{Key: k, Target: mvcc.CompareVersion, Result: mvcc.CompareGreater, Number: 0}},
			Then:     []mvcc.Op{{Put: &mvcc.PutRequest{Key: k, Value: benchValue}}},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompactHalf compacts a store of 1M keys whose every key has two
// versions down to one: half the history. A writer and a reader run while it
// is reclaimed; the writer's longest Put and 99.9th percentile are reported
// as max-write-pause-ms and p999-write-us, the reader's longest Range as
// max-read-pause-ms. Each iteration builds its own store, so run it once per
// count and take the median:
//
//	go test -run XXX -bench CompactHalf -benchtime 1x -count 5 ./mvcc
func BenchmarkCompactHalf(b *testing.B) {
	var writes []time.Duration
	var maxRead time.Duration
	for b.Loop() {
		b.StopTimer()
		s := loaded(b)
		for i := range benchKeys {
			s.Put(&mvcc.PutRequest{Key: benchKey(i), Value: benchValue})
		}
		runtime.GC() // the load leaves a collection due: not the compaction's to pay
		b.StartTimer()
		done, err := s.Compact(s.Revision())
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			writes = append(writes, latenciesUntil(done, func(i int) {
				s.Put(&mvcc.PutRequest{Key: benchKey(i % benchKeys), Value: benchValue})
			})...)
		})
		wg.Go(func() {
			reads := latenciesUntil(done, func(i int) {
				s.Range(&mvcc.RangeRequest{Key: benchKey(i * 7 % benchKeys)})
			})
			maxRead = max(maxRead, slices.Max(reads))
		})
		<-done
		wg.Wait()
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	slices.Sort(writes)
	b.ReportMetric(float64(writes[len(writes)-1].Microseconds())/1000, "max-write-pause-ms")
	b.ReportMetric(float64(writes[len(writes)*999/1000].Microseconds()), "p999-write-us")
	b.ReportMetric(float64(maxRead.Microseconds())/1000, "max-read-pause-ms")
}

// latenciesUntil calls fn(0), fn(1), ... until done is closed and returns
// the duration of each call (at least one).
func latenciesUntil(done <-chan struct{}, fn func(i int)) []time.Duration {
	var took []time.Duration
	for i := 0; ; i++ {
		start := time.Now()
		fn(i)
		took = append(took, time.Since(start))
		select {
		case <-done:
			return took
		default:
		}
	}
}

func BenchmarkSnapshotSerialize(b *testing.B) {
	s := sharedStore(b)
	var n int64
	for b.Loop() {
		var err error
		n, err = s.Snapshot().WriteTo(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(n)
}

func BenchmarkSnapshotRestore(b *testing.B) {
	var buf bytes.Buffer
	if _, err := sharedStore(b).Snapshot().WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s := mvcc.New(mvcc.Config{})
		if err := s.Restore(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkHeapPerKey reports heap bytes per key beyond the key and value
// bytes, measured after a GC around loading 1M keys.
func BenchmarkHeapPerKey(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := mvcc.New(mvcc.Config{})
		for _, i := range rand.New(rand.NewPCG(1, 1)).Perm(benchKeys) {
			s.Put(&mvcc.PutRequest{Key: benchKey(i), Value: benchValue})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey := float64(after.HeapAlloc-before.HeapAlloc)/benchKeys - 20 - 256
		b.ReportMetric(perKey, "overhead-B/key")
		runtime.KeepAlive(s)
		s.Close()
	}
}

// heapOverheadPerKey returns the heap bytes per key, beyond the key and
// value bytes, that build's store holds after a GC.
func heapOverheadPerKey(build func() *mvcc.Store) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	s.Close()
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/benchKeys - 20 - 256
}

// BenchmarkHeapPerKeyRestored reports heap bytes per key beyond the key and
// value bytes of a store restored from a snapshot of 1M keys.
func BenchmarkHeapPerKeyRestored(b *testing.B) {
	var buf bytes.Buffer
	if _, err := sharedStore(b).Snapshot().WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		perKey := heapOverheadPerKey(func() *mvcc.Store {
			s := mvcc.New(mvcc.Config{})
			if err := s.Restore(bytes.NewReader(buf.Bytes())); err != nil {
				b.Fatal(err)
			}
			return s
		})
		b.ReportMetric(perKey, "overhead-B/key")
	}
}

// BenchmarkHeapPerKeyDefragmented is BenchmarkHeapPerKey followed by a
// Defragment.
func BenchmarkHeapPerKeyDefragmented(b *testing.B) {
	for b.Loop() {
		perKey := heapOverheadPerKey(func() *mvcc.Store {
			s := mvcc.New(mvcc.Config{})
			for _, i := range rand.New(rand.NewPCG(1, 1)).Perm(benchKeys) {
				s.Put(&mvcc.PutRequest{Key: benchKey(i), Value: benchValue})
			}
			if err := s.Defragment(); err != nil {
				b.Fatal(err)
			}
			return s
		})
		b.ReportMetric(perKey, "overhead-B/key")
	}
}

// BenchmarkDefragment times Defragment on a store of 1M keys.
func BenchmarkDefragment(b *testing.B) {
	s := loaded(b)
	for b.Loop() {
		if err := s.Defragment(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHistory reads the changes of 1,000 revisions at a random place
// in the 1M-key store's change log (a watcher catching up), for the whole
// key space and for one prefix holding a tenth of the keys.
func BenchmarkHistory(b *testing.B) {
	s := sharedStore(b)
	rev := s.Revision()
	rng := rand.New(rand.NewPCG(3, 3))
	for _, c := range []struct {
		name     string
		key, end []byte
	}{
		{"all", []byte{0}, []byte{0}},
		{"prefix", []byte("bench/key/00000"), []byte("bench/key/00001")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				from := 1 + rng.Int64N(rev-1000)
				if _, err := s.History(mvcc.HistoryRequest{Key: c.key, End: c.end, From: from, To: from + 999}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
