package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvstore/kvstore"
)

// A workload is one row of the benchmark's table (the first five are the
// whole-cluster rows of the repository's BENCHMARKS.md): which node it
// targets, how many workers run its op, and whether it reads a preloaded
// keyspace.
type workload struct {
	name     string
	follower bool // target a follower rather than the leader
	single   bool // one worker, whatever -concurrency says
	preload  bool
	op       func(ctx context.Context, n *kvstore.Node, d *dataset, rng *rand.Rand) error
}

// workloads lists every workload in the order they run by default.
func workloads() []workload {
	serializable := []kvstore.OpOption{kvstore.WithSerializable()}
	return []workload{
		{name: "put-seq", single: true, op: opPut},
		{name: "put-64", op: opPut},
		{name: "get-lin", preload: true, op: opGet(nil)},
		{name: "get-ser", preload: true, op: opGet(serializable)},
		{name: "get-lin-follower-seq", follower: true, single: true, preload: true, op: opGet(nil)},
		{name: "put-follower-seq", follower: true, single: true, op: opPut},
		{name: "lease-grant-64", op: opGrant},
		{name: "lease-keepalive-64", op: opKeepAlive()},
	}
}

// workers is how many goroutines run w's op.
func (w *workload) workers(cfg *config) int {
	if w.single {
		return 1
	}
	return cfg.concurrency
}

// dataset is the keyspace and the value every put writes.
type dataset struct {
	keys  [][]byte
	value []byte
}

// newDataset makes n keys of keySize bytes the way etcd's benchmark tool
// does (tools/benchmark: binary.PutVarint of the key's number, zero-padded
// to the key size) and a random value of valueSize bytes.
func newDataset(n, keySize, valueSize int) (*dataset, error) {
	need := binary.PutVarint(make([]byte, binary.MaxVarintLen64), int64(max(n-1, 0)))
	if keySize < need {
		return nil, fmt.Errorf("-key-size %d is too small for %d keys (need %d)", keySize, n, need)
	}
	d := &dataset{keys: make([][]byte, n), value: make([]byte, valueSize)}
	for i := range d.keys {
		d.keys[i] = make([]byte, keySize)
		binary.PutVarint(d.keys[i], int64(i))
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range d.value {
		d.value[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return d, nil
}

func (d *dataset) randomKey(rng *rand.Rand) []byte { return d.keys[rng.IntN(len(d.keys))] }

func opPut(ctx context.Context, n *kvstore.Node, d *dataset, rng *rand.Rand) error {
	_, err := n.Put(ctx, d.randomKey(rng), d.value)
	return err
}

// opGrant grants a 60-second lease.
func opGrant(ctx context.Context, n *kvstore.Node, _ *dataset, _ *rand.Rand) error {
	_, err := n.Grant(ctx, 60)
	return err
}

// opKeepAlive renews one lease per cluster, granted by its first call,
// like etcd's benchmark tool renews one lease per client.
func opKeepAlive() func(context.Context, *kvstore.Node, *dataset, *rand.Rand) error {
	var mu sync.Mutex
	leases := map[*kvstore.Node]int64{} // each run has its own cluster
	return func(ctx context.Context, n *kvstore.Node, _ *dataset, _ *rand.Rand) error {
		mu.Lock()
		id, ok := leases[n]
		if !ok {
			g, err := n.Grant(ctx, 60)
			if err != nil {
				mu.Unlock()
				return err
			}
			id = g.ID
			leases[n] = id
		}
		mu.Unlock()
		_, err := n.KeepAliveOnce(ctx, id)
		return err
	}
}

// opGet reads a preloaded key and checks that it is there.
func opGet(opts []kvstore.OpOption) func(context.Context, *kvstore.Node, *dataset, *rand.Rand) error {
	return func(ctx context.Context, n *kvstore.Node, d *dataset, rng *rand.Rand) error {
		key := d.randomKey(rng)
		resp, err := n.Get(ctx, key, opts...)
		if err != nil {
			return err
		}
		if resp.Count != 1 {
			return fmt.Errorf("get %q: %d keys, want the preloaded one", key, resp.Count)
		}
		return nil
	}
}

// preloadBatch is the number of puts per preload transaction: under
// etcd's (and kvstore's) default limit of 128 ops per txn, and enough that a
// keyspace of millions loads in seconds.
const preloadBatch = 100

// preload writes every key of d through the leader in transactions of
// preloadBatch puts, with the given number of writers, then waits until
// every node has applied the last write, so that reads on any node find the
// whole keyspace.
func preload(ctx context.Context, c *cluster, d *dataset, writers int) error {
	leader, _ := c.leader()
	if leader == nil {
		return fmt.Errorf("preload: no leader")
	}
	var next, lastRev atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			ops := make([]kvstore.Op, 0, preloadBatch)
			for {
				lo := next.Add(preloadBatch) - preloadBatch
				if lo >= int64(len(d.keys)) {
					return
				}
				ops = ops[:0]
				for _, k := range d.keys[lo:min(lo+preloadBatch, int64(len(d.keys)))] {
					ops = append(ops, kvstore.OpPut(k, d.value))
				}
				resp, err := leader.Txn(ctx).Then(ops...).Commit()
				if err != nil {
					errs <- fmt.Errorf("preload: %w", err)
					return
				}
				storeMax(&lastRev, resp.Header.Revision)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, n := range c.nodes {
		for {
			resp, err := n.Get(ctx, d.keys[0], kvstore.WithSerializable())
			if err != nil {
				return fmt.Errorf("preload: waiting for replicas: %w", err)
			}
			if resp.Header.Revision >= lastRev.Load() {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("preload: waiting for replicas: %w", ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old; old = a.Load() {
		if a.CompareAndSwap(old, v) {
			return
		}
	}
}
