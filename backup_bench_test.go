package kvstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// BenchmarkBackup backs up an in-memory node holding 1M keys of 256 B
// (the figure; -short: 100k) while one writer puts in a loop,
// and restores the backup into a data dir:
//
//	go test -run '^$' -bench Backup -benchtime 3x .
//
// backup reports the throughput (MB/s, of the backup's bytes) and the
// writer's longest Put during the backups (max-put-ms) beside its longest
// Put over as many puts before them (max-put-ms-idle); restore reports
// the time to check the backup and write the data dir.
func BenchmarkBackup(b *testing.B) {
	keys := 1_000_000
	if testing.Short() {
		keys = 100_000
	}
	const batch = 1000
	c := kvtest.NewCluster(b, 1, kvtest.WithNodeOptions(kvstore.WithMaxTxnOps(batch)))
	n := c.WaitLeader()
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 256)
	for i := 0; i < keys; i += batch {
		var ops []kvstore.Op
		for j := i; j < min(i+batch, keys); j++ {
			ops = append(ops, kvstore.OpPut([]byte(fmt.Sprintf("key/%08d", j)), value))
		}
		if _, err := n.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
	var backup bytes.Buffer
	if _, err := n.Backup(ctx, &backup); err != nil {
		b.Fatal(err)
	}

	b.Run("backup", func(b *testing.B) {
		idle := putLatencies(b, n, 2000)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var during []time.Duration
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				if _, err := n.Put(ctx, []byte(fmt.Sprint("writer/", i%100)), value); err != nil {
					b.Error(err)
					return
				}
				during = append(during, time.Since(start))
			}
		})
		b.SetBytes(int64(backup.Len()))
		b.ResetTimer()
		for b.Loop() {
			if _, err := n.Backup(ctx, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		close(stop)
		wg.Wait()
		b.ReportMetric(float64(slices.Max(append(during, 0)))/1e6, "max-put-ms")
		b.ReportMetric(float64(slices.Max(idle))/1e6, "max-put-ms-idle")
		b.ReportMetric(float64(len(during)), "puts-during")
	})
	b.Run("restore", func(b *testing.B) {
		peers := kvstore.RestoreCluster(kvstore.Peer{ID: "a", Address: "a"})
		for i := 0; b.Loop(); i++ {
			dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
			if _, err := kvstore.Restore(bytes.NewReader(backup.Bytes()), dir, kvstore.RestoreMember("a"), peers, kvstore.RestoreClusterToken("t")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// putLatencies times count sequential puts on n.
func putLatencies(b *testing.B, n *kvstore.Node, count int) []time.Duration {
	b.Helper()
	out := make([]time.Duration, 0, count)
	for i := range count {
		start := time.Now()
		if _, err := n.Put(context.Background(), []byte(fmt.Sprint("writer/", i%100)), []byte("x")); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}
