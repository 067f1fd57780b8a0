package kvstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
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
// Put over as long without a backup (max-put-ms-idle); restore reports
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
		b.SetBytes(int64(backup.Len()))
		var took time.Duration
		during := whileWriting(b, n, func() {
			start := time.Now()
			for b.Loop() {
				if _, err := n.Backup(ctx, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			took = time.Since(start)
		})
		b.StopTimer()
		idle := whileWriting(b, n, func() { time.Sleep(took) })
		b.ReportMetric(float64(slices.Max(during))/1e6, "max-put-ms")
		b.ReportMetric(float64(slices.Max(idle))/1e6, "max-put-ms-idle")
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

// whileWriting runs f while one writer puts on n in a loop, and returns
// the latencies of the writer's puts (at least one).
func whileWriting(b *testing.B, n *kvstore.Node, f func()) []time.Duration {
	b.Helper()
	runtime.GC() // loading the store leaves a collection due: not either window's to pay
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var latencies []time.Duration
	value := bytes.Repeat([]byte("w"), 256)
	wg.Go(func() {
		for i := 0; ; i++ {
			start := time.Now()
			if _, err := n.Put(context.Background(), []byte(fmt.Sprint("writer/", i%100)), value); err != nil {
				b.Error(err)
				return
			}
			latencies = append(latencies, time.Since(start))
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	return latencies
}
