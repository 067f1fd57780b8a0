package mvcc_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// BenchmarkInsertAscending times puts of new keys in ascending order, the
// load of a fresh keyspace: each op inserts one key, so it carries the
// index's splits and, amortized, the passes that tighten it (tighten.go).
// It reports the index's heap per key beyond keys, values and version
// records as the ops left it.
func BenchmarkInsertAscending(b *testing.B) {
	s := mvcc.New(mvcc.Config{})
	defer s.Close()
	keys := make([][]byte, 0, 1<<20)
	for i := 0; i < cap(keys); i++ {
		keys = append(keys, fmt.Appendf(nil, "bench/key/%010d", i))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		if n == len(keys) {
			keys = append(keys, fmt.Appendf(nil, "bench/key/%010d", n))
		}
		if _, _, err := s.Put(&mvcc.PutRequest{Key: keys[n]}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Each key: its 20 bytes (a 24-byte allocation), one version record
	// (48) and one change-log entry (24).
	perKey := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n) - 24 - 48 - 24
	b.ReportMetric(perKey, "index-B/key")
	runtime.KeepAlive(keys)
}
