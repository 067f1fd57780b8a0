package storage

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkSegmentAppend appends and flushes records to raft-wal segment
// files as the members of one in-process cluster do, each writer to its
// own file on the same disk, with and without prewriting (prewrite.go).
// An op is one append and flush; p50-µs and p99-µs are per append.
//
//	go test -run '^$' -bench SegmentAppend -benchtime 2000x ./internal/storage
func BenchmarkSegmentAppend(b *testing.B) {
	for _, writers := range []int{1, 3} {
		for _, record := range []int{400, 6000} {
			for _, prewrite := range []bool{false, true} {
				name := fmt.Sprintf("writers=%d/record=%d/prewrite=%v", writers, record, prewrite)
				b.Run(name, func(b *testing.B) { benchmarkSegmentAppend(b, writers, record, prewrite) })
			}
		}
	}
}

func benchmarkSegmentAppend(b *testing.B, writers, record int, prewrite bool) {
	const size = 64 << 20
	s, _ := newWALSync(false, prewrite)
	files := make([]*walFile, writers)
	for i := range files {
		wf, err := s.Create(b.TempDir(), "seg.wal", size)
		if err != nil {
			b.Fatal(err)
		}
		files[i] = wf.(*walFile)
		defer files[i].Close()
	}
	per := (b.N + writers - 1) / writers
	if int64(per)*int64(record) > size {
		b.Fatalf("%d appends of %d bytes overflow a segment", per, record)
	}
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for w, f := range files {
		wg.Go(func() {
			rec := make([]byte, record)
			for i := range per {
				start := time.Now()
				if _, err := f.WriteAt(rec, int64(i*record)); err != nil {
					b.Error(err)
					return
				}
				if err := f.Sync(); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}
