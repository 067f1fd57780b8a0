package kvstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// BenchmarkMetricsCost measures the hot paths with metrics off and on: a
// serializable Get from parallel readers and a sequential Put, on one
// in-memory node (so that raft and disk do not drown the difference).
// With -count N the two alternate, which keeps a loaded machine's drift
// out of the comparison:
//
//	go test -run '^$' -bench MetricsCost -count 8 .
func BenchmarkMetricsCost(b *testing.B) {
	for _, workload := range []string{"get-ser", "put-seq"} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/metrics=%v", workload, on), func(b *testing.B) {
				var opts []kvstore.Option
				if on {
					opts = append(opts, kvstore.WithMetrics(prometheus.NewRegistry()))
				}
				c := kvtest.NewCluster(b, 1, kvtest.WithNodeOptions(opts...))
				n := c.WaitLeader()
				ctx := context.Background()
				key, value := []byte("bench/key"), make([]byte, 256)
				if _, err := n.Put(ctx, key, value); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				switch workload {
				case "get-ser":
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := n.Get(ctx, key, kvstore.WithSerializable()); err != nil {
								b.Error(err)
								return
							}
						}
					})
				case "put-seq":
					for b.Loop() {
						if _, err := n.Put(ctx, key, value); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
