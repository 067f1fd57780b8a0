package mvcc

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCompactLockHold measures how long physical compaction holds the
// write lock per batch on a store of 1M keys with two versions each: the
// longest time a reader or writer can wait for it (scheduling on a busy
// machine comes on top). Reports max-hold-ms and mean-hold-ms.
//
//	go test -run XXX -bench CompactLockHold -benchtime 1x ./mvcc
func BenchmarkCompactLockHold(b *testing.B) {
	value := make([]byte, 256)
	for b.Loop() {
		b.StopTimer()
		s := New(Config{})
		for range 2 {
			for i := range 1_000_000 {
				s.Put(&PutRequest{Key: fmt.Appendf(nil, "bench/key/%010d", (i*7919)%1_000_000), Value: value})
			}
		}
		b.StartTimer()
		s.mu.Lock()
		s.compactRev = s.rev
		var longest, total time.Duration
		batches := 0
		for after, more, first := "", true, true; more; first = false {
			start := time.Now()
			after, more = s.compactBatch(s.rev, after, first)
			d := time.Since(start)
			longest, total = max(longest, d), total+d
			batches++
		}
		s.mu.Unlock()
		b.ReportMetric(float64(longest.Microseconds())/1000, "max-hold-ms")
		b.ReportMetric(float64(total.Microseconds())/1000/float64(batches), "mean-hold-ms")
		s.Close()
	}
}
