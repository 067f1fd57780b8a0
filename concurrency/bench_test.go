package concurrency_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/concurrency"
	"github.com/kvstore/kvstore/kvtest"
)

// Uncontended Lock+Unlock, in real time on kvtest's in-memory network,
// through the raft leader and through a follower (which forwards).
func BenchmarkMutexLockUnlock(b *testing.B) {
	for _, through := range []string{"leader", "follower"} {
		b.Run(through, func(b *testing.B) {
			c := kvtest.NewCluster(b, 3)
			node := c.WaitLeader()
			if through == "follower" {
				node = c.Followers()[0]
			}
			s, err := concurrency.NewSession(context.Background(), node)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			m, err := concurrency.NewMutex(s, "bench")
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if err := m.Lock(ctx); err != nil {
					b.Fatal(err)
				}
				if err := m.Unlock(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// electionFailover elects a candidate through member dead, makes a second
// candidate through another member wait, stops dead, and returns how long
// the second took to be elected: the first's session TTL (its lease must
// expire, nobody can revoke it) plus the revoke and the watch.
func electionFailover(tb testing.TB, c *kvtest.Cluster, dead, other int, prefix string) time.Duration {
	ctx := context.Background()
	first, err := concurrency.NewSession(ctx, c.Node(dead), concurrency.WithTTL(1))
	if err != nil {
		tb.Fatal(err)
	}
	e1, _ := concurrency.NewElection(first, prefix)
	if err := e1.Campaign(ctx, []byte("first")); err != nil {
		tb.Fatal(err)
	}
	second, err := concurrency.NewSession(ctx, c.Node(other), concurrency.WithTTL(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer second.Close()
	e2, _ := concurrency.NewElection(second, prefix)
	elected := make(chan error, 1)
	go func() { elected <- e2.Campaign(ctx, []byte("second")) }()
	time.Sleep(10 * time.Millisecond) // let it queue behind the first
	start := time.Now()
	c.Stop(dead)
	if err := <-elected; err != nil {
		tb.Fatal(err)
	}
	took := time.Since(start)
	first.Close()
	c.Restart(dead)
	c.WaitLeader()
	if err := e2.Resign(ctx); err != nil {
		tb.Fatal(err)
	}
	return took
}

// Election failover in real time after the leader's member dies: as a raft
// follower, and as the raft leader (the lease is then taken over by a new
// raft leader from its last checkpoint).
func BenchmarkElectionFailover(b *testing.B) {
	for _, role := range []string{"follower", "raft-leader"} {
		b.Run(role, func(b *testing.B) {
			c := kvtest.NewCluster(b, 3, kvtest.WithNodeOptions(kvstore.WithLeaseCheckpointInterval(500*time.Millisecond)))
			var total time.Duration
			n := 0
			for b.Loop() {
				leader := c.Index(c.WaitLeader())
				dead, other := (leader+1)%3, (leader+2)%3
				if role == "raft-leader" {
					dead, other = leader, (leader+1)%3
				}
				total += electionFailover(b, c, dead, other, fmt.Sprint("bench", n))
				n++
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(n), "failover-ms")
		})
	}
}

// The same failover in virtual time: bounded by the TTL plus the lease
// machinery's own delays (expiry check, checkpoint), logged for the
// record.
func TestElectionFailoverTime(t *testing.T) {
	for _, role := range []string{"follower", "raft-leader"} {
		t.Run(role, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithLeaseCheckpointInterval(500*time.Millisecond)))
				leader := c.Index(c.WaitLeader())
				dead, other := (leader+1)%3, (leader+2)%3
				if role == "raft-leader" {
					dead, other = leader, (leader+1)%3
				}
				took := electionFailover(t, c, dead, other, "svc")
				t.Logf("failover after the %s member died: %v (virtual), TTL 1s", role, took)
				if took < 500*time.Millisecond || took > 3*time.Second {
					t.Fatalf("failover took %v with a 1s TTL", took)
				}
			})
		})
	}
}

// STM transfers per second between 4 accounts (so most transactions
// contend), from goroutines spread over the 3 members.
func BenchmarkSTMContention(b *testing.B) {
	for _, level := range []concurrency.Isolation{concurrency.Serializable, concurrency.RepeatableReads} {
		b.Run(level.String(), func(b *testing.B) {
			c := kvtest.NewCluster(b, 3)
			ctx := context.Background()
			for i := range 4 {
				if _, err := c.WaitLeader().Put(ctx, []byte(fmt.Sprint("acct/", i)), []byte("1000000")); err != nil {
					b.Fatal(err)
				}
			}
			nodes := c.Nodes()
			var worker, runs, commits atomic.Int64
			b.SetParallelism(4) // 4 × GOMAXPROCS goroutines
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				w := worker.Add(1)
				node := nodes[w%3]
				i := int(w)
				for pb.Next() {
					i++
					_, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
						runs.Add(1)
						return transfer(s, i%4, (i+1)%4, 1)
					}, concurrency.WithIsolation(level), concurrency.WithRetries(1000))
					if err != nil {
						b.Error(err)
						return
					}
					commits.Add(1)
				}
			})
			elapsed := time.Since(start)
			b.ReportMetric(float64(commits.Load())/elapsed.Seconds(), "txn/s")
			b.ReportMetric(float64(runs.Load())/float64(max(commits.Load(), 1)), "runs/txn")
		})
	}
}
