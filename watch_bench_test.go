package kvstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// BenchmarkWatchDelivery measures, on a 3-node cluster with fsync'd
// raft-wal storage, the time from a put's acknowledgement to the delivery of
// its event to each of the watchers on the leader (the watch delivery table
// of BENCHMARKS.md). An event delivered before the writer saw its acknowledgement
// counts as 0: the hub is notified before the write is acknowledged.
//
//	go test -run XXX -bench WatchDelivery -benchtime 3000x .
//
// The watcher counts (1, 100, 1,000 and 10,000 with one writer and with 64)
// are the scaling curve of BENCHMARKS.md: which cost grows with the
// number of watches.
func BenchmarkWatchDelivery(b *testing.B) {
	for _, tc := range []struct{ watchers, writers int }{
		{1, 1}, {100, 1}, {1000, 1}, {10000, 1},
		{1, 64}, {100, 64}, {1000, 64}, {10000, 64},
	} {
		b.Run(fmt.Sprintf("watchers=%d/writers=%d", tc.watchers, tc.writers), func(b *testing.B) {
			benchmarkWatchDelivery(b, tc.watchers, tc.writers)
		})
	}
}

func benchmarkWatchDelivery(b *testing.B, watchers, writers int) {
	// raft's default timings, not kvtest's: with kvtest's 25 ms leader
	// lease, the wake-ups of 10,000 watchers on 2 cores starve the
	// leader's heartbeats long enough for it to step down mid-run.
	c := kvtest.NewCluster(b, 3, kvtest.WithDisk(kvstore.LogStoreWAL),
		kvtest.WithNodeOptions(kvstore.WithRaftTiming(time.Second, time.Second, 500*time.Millisecond, 0)))
	leader := c.WaitLeader()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var acked sync.Map // revision -> time.Time of the acknowledgement
	var mu sync.Mutex
	var latencies []time.Duration
	var done sync.WaitGroup
	value := make([]byte, 256)
	for range watchers {
		ch, err := leader.Watch(ctx, []byte("bench/"), kvstore.WithPrefix())
		if err != nil {
			b.Fatal(err)
		}
		done.Add(1)
		go func() {
			defer done.Done()
			var mine []time.Duration
			defer func() {
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
			for resp := range ch {
				now := time.Now()
				for _, ev := range resp.Events {
					var d time.Duration
					if at, ok := acked.Load(ev.KV.ModRevision); ok {
						d = max(now.Sub(at.(time.Time)), 0)
					}
					mine = append(mine, d)
				}
			}
		}()
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + writers - 1) / writers
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				resp, err := leader.Put(ctx, []byte(fmt.Sprintf("bench/%d/%d", w, i)), value)
				if err != nil {
					b.Error(err)
					return
				}
				acked.Store(resp.Header.Revision, time.Now())
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cancel()
	done.Wait()
	slices.Sort(latencies)
	if len(latencies) > 0 {
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
	}
}
