package watch_test

// Benchmarks of the hub. Run with:
//
//	go test -run XXX -bench . -benchmem -count 5 ./watch
//
// BenchmarkApply is the state machine's apply path (a store Put, then
// Notify) with no watches and with 10,000 idle watches on other keys;
// BenchmarkNotify isolates the hub's share. BenchmarkIdleWatcherBytes
// reports the heap held per idle watch. BenchmarkLatency reports the time
// from Notify to receipt, p50 and p99, for 1 and 1,000 watches on a
// prefix.
import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

const benchStoreKeys = 100_000

func benchKey(i int) []byte { return fmt.Appendf(nil, "bench/key/%010d", i) }

var benchValue = make([]byte, 256)

// benchStore returns a store holding benchStoreKeys keys.
func benchStore(b *testing.B) *mvcc.Store {
	b.Helper()
	s := mvcc.New(mvcc.Config{})
	b.Cleanup(func() { s.Close() })
	for i := range benchStoreKeys {
		if _, _, err := s.Put(&mvcc.PutRequest{Key: benchKey(i), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// idleWatches starts n watches on keys nobody writes: half single keys,
// half prefixes.
func idleWatches(b *testing.B, h *watch.Hub, ctx context.Context, n int) {
	b.Helper()
	for i := range n {
		r := watch.Request{Key: fmt.Appendf(nil, "idle/%06d", i)}
		if i%2 == 1 {
			r = prefix(fmt.Sprintf("idle/%06d/", i))
		}
		if _, err := h.Watch(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	for _, n := range []int{0, 10_000} {
		b.Run(fmt.Sprint("watchers=", n), func(b *testing.B) {
			s := benchStore(b)
			h := watch.NewHub(s, watch.Config{})
			defer h.Close()
			idleWatches(b, h, b.Context(), n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				res, evs, err := s.Put(&mvcc.PutRequest{Key: benchKey(i % benchStoreKeys), Value: benchValue})
				if err != nil {
					b.Fatal(err)
				}
				h.Notify(res.Revision, evs)
			}
		})
	}
}

func BenchmarkNotify(b *testing.B) {
	for _, n := range []int{0, 10_000} {
		b.Run(fmt.Sprint("watchers=", n), func(b *testing.B) {
			s := mvcc.New(mvcc.Config{})
			defer s.Close()
			h := watch.NewHub(s, watch.Config{})
			defer h.Close()
			idleWatches(b, h, b.Context(), n)
			_, evs, _ := s.Put(&mvcc.PutRequest{Key: benchKey(1), Value: benchValue})
			rev := s.Revision()
			h.Notify(rev, evs)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rev++
				h.Notify(rev, evs) // the hub does not read the store here
			}
		})
	}
}

func BenchmarkIdleWatcherBytes(b *testing.B) {
	const n = 10_000
	for b.Loop() {
		s := mvcc.New(mvcc.Config{})
		h := watch.NewHub(s, watch.Config{})
		// One cancellable parent, as a node's callers would pass: the
		// per-watch cost of registering on it is counted, the parent not.
		ctx, cancel := context.WithCancel(context.Background())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		idleWatches(b, h, ctx, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/watcher")
		cancel()
		h.Close()
		s.Close()
	}
}

func BenchmarkLatency(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprint("watchers=", n), func(b *testing.B) {
			s := mvcc.New(mvcc.Config{})
			defer s.Close()
			h := watch.NewHub(s, watch.Config{})
			defer h.Close()
			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			var received sync.WaitGroup
			lat := make([][]time.Duration, n)
			var consumers sync.WaitGroup
			for i := range n {
				ch, err := h.Watch(ctx, prefix("lat/"))
				if err != nil {
					b.Fatal(err)
				}
				consumers.Add(1)
				go func() {
					defer consumers.Done()
					for r := range ch {
						now := time.Now()
						for _, ev := range r.Events {
							sent := time.Unix(0, int64(binary.BigEndian.Uint64(ev.KV.Value)))
							lat[i] = append(lat[i], now.Sub(sent))
							received.Done()
						}
					}
				}()
			}
			value := make([]byte, 8)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				received.Add(n)
				binary.BigEndian.PutUint64(value, uint64(time.Now().UnixNano()))
				res, evs, err := s.Put(&mvcc.PutRequest{Key: fmt.Appendf(nil, "lat/%d", i%64), Value: value})
				if err != nil {
					b.Fatal(err)
				}
				h.Notify(res.Revision, evs)
				received.Wait() // one write in flight: latency, not queueing
			}
			b.StopTimer()
			cancel()
			consumers.Wait()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2])/1e3, "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100])/1e3, "p99-µs")
			}
		})
	}
}
