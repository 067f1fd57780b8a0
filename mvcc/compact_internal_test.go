package mvcc

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCompactLockHold measures how long the reclaimer holds the write
// lock per batch on a store of 1M keys with two versions each: the longest
// time a reader or writer can wait for it (scheduling on a busy machine
// comes on top). Reports max-hold-ms and mean-hold-ms.
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
		if err := s.compactLogically(s.rev); err != nil {
			b.Fatal(err)
		}
		var longest, total time.Duration
		var changed []keyItem
		holds := 0
		for after, more, first := "", true, true; more; first = false {
			start := time.Now()
			after, more, changed = s.compactBatch(s.rev, after, first, changed[:0])
			d := time.Since(start)
			longest, total = max(longest, d), total+d
			holds++
		}
		s.mu.Unlock()
		b.ReportMetric(float64(longest.Microseconds())/1000, "max-hold-ms")
		b.ReportMetric(float64(total.Microseconds())/1000/float64(holds), "mean-hold-ms")
		s.Close()
	}
}

// BenchmarkCompactNothingToReclaim is a reclaim pass over 1M keys of one
// version each, the common case after a bulk load: every key is visited and
// none changes, so the pass's cost is the walk alone (the scaling curves in
// BENCHMARKS.md found it dominating put-64 at 10M keys).
func BenchmarkCompactNothingToReclaim(b *testing.B) {
	value := make([]byte, 256)
	s := New(Config{})
	defer s.Close()
	for i := range 1_000_000 {
		s.Put(&PutRequest{Key: fmt.Appendf(nil, "bench/key/%010d", (i*7919)%1_000_000), Value: value})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.compactLogically(s.rev); err != nil {
		b.Fatal(err)
	}
	var changed []keyItem
	for b.Loop() {
		for after, more, first := "", true, true; more; first = false {
			after, more, changed = s.compactBatch(s.rev, after, first, changed[:0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/key")
}
