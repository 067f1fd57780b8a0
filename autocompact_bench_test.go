package kvstore_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// BenchmarkPutDuringAutoCompaction measures what 64 writers see while
// auto-compaction runs on an in-memory node of 1M keys (-short: 100k),
// each written twice so that half the store is history to reclaim:
//
//	go test -run '^$' -bench PutDuringAutoCompaction -benchtime 1x -count 3 .
//
// The writers put 256-byte values to random keys for a 4-second window that
// starts as the load ends. With auto-compaction=periodic-2s the leader
// compacts every 2 s to the revision it sampled 2 s before, so that the
// window sees compactions of the load's second half, whose first versions
// (and the writers' overwritten ones) the store reclaims while the writers
// run; auto-compaction=off is the same node and writers without
// compaction, the baseline. Each reports the writers' longest Put
// (max-put-ms), their 99th and 99.9th percentiles (p99-put-ms,
// p999-put-ms), their throughput (puts/s) and the compactions applied in
// the window (compactions).
func BenchmarkPutDuringAutoCompaction(b *testing.B) {
	keys := 1_000_000
	if testing.Short() {
		keys = 100_000
	}
	for _, mode := range []struct {
		name string
		opt  kvstore.Option
	}{
		{"auto-compaction=periodic-2s", kvstore.WithAutoCompaction(kvstore.AutoCompactionPeriodic, 2*time.Second)},
		{"auto-compaction=off", kvstore.WithAutoCompaction(kvstore.AutoCompactionOff, 0)},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var w putWindow
			for b.Loop() {
				b.StopTimer()
				w = putsDuringAutoCompaction(b, keys, mode.opt)
				b.StartTimer()
			}
			slices.Sort(w.latencies)
			at := func(q float64) float64 {
				return float64(w.latencies[int(q*float64(len(w.latencies)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(at(1), "max-put-ms")
			b.ReportMetric(at(0.99), "p99-put-ms")
			b.ReportMetric(at(0.999), "p999-put-ms")
			b.ReportMetric(float64(len(w.latencies))/w.took.Seconds(), "puts/s")
			b.ReportMetric(float64(w.compactions), "compactions")
		})
	}
}

// putWindow is what the writers of one window saw.
type putWindow struct {
	latencies   []time.Duration
	took        time.Duration
	compactions int
}

// putsDuringAutoCompaction loads a fresh one-node cluster opened with
// autoCompaction and runs the window.
func putsDuringAutoCompaction(b *testing.B, keys int, autoCompaction kvstore.Option) putWindow {
	const (
		batch   = 1000
		writers = 64
		window  = 4 * time.Second
	)
	c := kvtest.NewCluster(b, 1, kvtest.WithNodeOptions(kvstore.WithMaxTxnOps(batch), autoCompaction))
	n := c.WaitLeader()
	ctx := context.Background()
	key := func(i int) []byte { return fmt.Appendf(nil, "key/%08d", i) }
	value := bytes.Repeat([]byte("v"), 256)
	for range 2 {
		for i := 0; i < keys; i += batch {
			ops := make([]kvstore.Op, 0, batch)
			for j := i; j < min(i+batch, keys); j++ {
				ops = append(ops, kvstore.OpPut(key(j), value))
			}
			if _, err := n.Txn(ctx).Then(ops...).Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.GC() // the load leaves a collection due: not the window's to pay

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var compactions int
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		last := n.Status().CompactRevision
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if rev := n.Status().CompactRevision; rev != last {
				compactions, last = compactions+1, rev
			}
		}
	})
	latencies := make([][]time.Duration, writers)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				begin := time.Now()
				if _, err := n.Put(ctx, key(rng.IntN(keys)), value); err != nil {
					b.Error(err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(begin))
			}
		})
	}
	time.Sleep(window)
	close(stop)
	wg.Wait()
	return putWindow{latencies: slices.Concat(latencies...), took: time.Since(start), compactions: compactions}
}
