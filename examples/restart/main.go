// Command restart measures what restarting a one-member kvstore costs as
// the keyspace grows: it loads N keys into a node on disk (raft-wal, fsync
// on) through txns of 100 puts, closes it, reopens it on the same data dir
// and times each phase of the way back, for each N in -keys, -runs times,
// printing the median of each figure.
//
// Phases, all wall time:
//
//	close   Close after the load (with the snapshot Close takes when the
//	        next Open would otherwise replay a long log)
//	open    Open: data dir checks, log store open and check, snapshot restore
//	leader  Open's return to WaitLeader's (the election)
//	ready   WaitLeader's return to a linearizable count that sees every key
//	        (the log replay since the snapshot and the new leader's first commit)
//	reopen  open + leader + ready, the figure ../shared/scale reports
//	cpu     the process's CPU time (user and system, every goroutine, the
//	        collector's included) over the reopen: less sensitive than the
//	        wall times to other work on the machine
//
// and the Go heap in use and process RSS after a GC, after the load and
// after the reopen. With -defrag, the node is defragmented after the load
// (Node.Defragment) and three more columns follow: the Defragment's time
// and the heap and RSS after it. On a machine shared with other work the times vary
// from run to run; -cpuprofile writes a CPU profile of each reopen
// (NAME.<keys>.run<N>) to see where it goes whatever the load.
//
// Usage:
//
//	go run ./examples/restart
//	go run ./examples/restart -keys 100000,1000000,5000000 -runs 3
//	go run ./examples/restart -keys 1000000 -runs 1 -cpuprofile reopen.prof
//	go run ./examples/restart -keys 1000000 -runs 3 -defrag
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/proccpu"
	"github.com/kvstore/kvstore/internal/procmem"
	"github.com/kvstore/kvstore/transport"
)

func main() {
	keysFlag := flag.String("keys", "20000,100000,1000000", "keyspace sizes, comma-separated")
	valueSize := flag.Int("val", 256, "value bytes")
	runs := flag.Int("runs", 3, "runs per size; medians are printed")
	defrag := flag.Bool("defrag", false, "defragment the node after the load, reporting its time and the heap and RSS after it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each reopen to this name, with .<keys>.run<N> before its extension")
	flag.Parse()
	var sizes []int
	for f := range strings.SplitSeq(*keysFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "restart: bad -keys entry %q\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	if *runs < 1 || *valueSize < 0 {
		fmt.Fprintln(os.Stderr, "restart: -runs must be at least 1 and -val not negative")
		os.Exit(2)
	}
	fmt.Printf("%-9s %8s %8s %8s %8s %8s %8s %8s %10s %10s %10s %10s",
		"keys", "load", "close", "open", "leader", "ready", "reopen", "cpu", "heap", "rss", "heap-after", "rss-after")
	if *defrag {
		fmt.Printf(" %8s %11s %11s", "defrag", "heap-defrag", "rss-defrag")
	}
	fmt.Println()
	for _, n := range sizes {
		var results []result
		for run := 1; run <= *runs; run++ {
			prof := ""
			if *cpuProfile != "" {
				ext := filepath.Ext(*cpuProfile)
				prof = fmt.Sprintf("%s.%d.run%d%s", strings.TrimSuffix(*cpuProfile, ext), n, run, ext)
			}
			r, err := measure(n, *valueSize, *defrag, prof)
			if err != nil {
				fmt.Fprintf(os.Stderr, "restart: %d keys, run %d: %v\n", n, run, err)
				os.Exit(1)
			}
			results = append(results, r)
		}
		m := median(results)
		fmt.Printf("%-9d %8s %8s %8s %8s %8s %8s %8s %8dMB %8dMB %8dMB %8dMB", n,
			secs(m.load), secs(m.close), secs(m.open), secs(m.leader), secs(m.ready), secs(m.reopen), secs(m.cpu),
			m.heap>>20, m.rss>>20, m.heapAfter>>20, m.rssAfter>>20)
		if *defrag {
			fmt.Printf(" %8s %9dMB %9dMB", secs(m.defrag), m.heapDefrag>>20, m.rssDefrag>>20)
		}
		fmt.Println()
	}
}

type result struct {
	load, close, open, leader, ready time.Duration
	// reopen is open+leader+ready; cpu the CPU time over it.
	reopen, cpu                    time.Duration
	heap, rss, heapAfter, rssAfter uint64
	// With -defrag: the Defragment's time, the heap and RSS after it.
	defrag                time.Duration
	heapDefrag, rssDefrag uint64
}

// median takes the median of each figure separately.
func median(rs []result) result {
	d := func(f func(result) time.Duration) time.Duration {
		v := make([]time.Duration, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	b := func(f func(result) uint64) uint64 {
		v := make([]uint64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		load:      d(func(r result) time.Duration { return r.load }),
		close:     d(func(r result) time.Duration { return r.close }),
		open:      d(func(r result) time.Duration { return r.open }),
		leader:    d(func(r result) time.Duration { return r.leader }),
		ready:     d(func(r result) time.Duration { return r.ready }),
		reopen:    d(func(r result) time.Duration { return r.reopen }),
		cpu:       d(func(r result) time.Duration { return r.cpu }),
		heap:      b(func(r result) uint64 { return r.heap }),
		rss:       b(func(r result) uint64 { return r.rss }),
		heapAfter: b(func(r result) uint64 { return r.heapAfter }),
		rssAfter:  b(func(r result) uint64 { return r.rssAfter }),

		defrag:     d(func(r result) time.Duration { return r.defrag }),
		heapDefrag: b(func(r result) uint64 { return r.heapDefrag }),
		rssDefrag:  b(func(r result) uint64 { return r.rssDefrag }),
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// measure loads n keys into a fresh node in a temporary dir, closes it and
// reopens it, timing each phase; with defrag it defragments the node
// between the load and the close.
func measure(n, valueSize int, defrag bool, cpuProfile string) (result, error) {
	var r result
	dir, err := os.MkdirTemp("", "kvstore-restart-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	network := transport.NewNetwork()
	base := procmem.HeapInUse()

	node, err := open(network, dir)
	if err != nil {
		return r, err
	}
	if _, err := node.WaitLeader(ctx); err != nil {
		node.Close()
		return r, err
	}
	start := time.Now()
	if err := load(ctx, node, n, valueSize); err != nil {
		node.Close()
		return r, err
	}
	r.load = time.Since(start)
	r.heap, r.rss = procmem.HeapInUse()-base, procmem.RSS()
	if defrag {
		start = time.Now()
		if err := node.Defragment(ctx); err != nil {
			node.Close()
			return r, err
		}
		r.defrag = time.Since(start)
		r.heapDefrag, r.rssDefrag = procmem.HeapInUse()-base, procmem.RSS()
	}
	start = time.Now()
	if err := node.Close(); err != nil {
		return r, err
	}
	r.close = time.Since(start)
	runtime.GC()

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return r, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, err
		}
	}
	cpuStart := proccpu.Used()
	start = time.Now()
	if node, err = open(network, dir); err != nil {
		return r, err
	}
	defer node.Close()
	opened := time.Now()
	if _, err := node.WaitLeader(ctx); err != nil {
		return r, err
	}
	led := time.Now()
	count, err := countKeys(ctx, node)
	ready := time.Now()
	r.cpu = proccpu.Used() - cpuStart
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return r, err
	}
	if count != int64(n) {
		return r, fmt.Errorf("after reopen: %d keys, want %d", count, n)
	}
	r.open, r.leader, r.ready, r.reopen = opened.Sub(start), led.Sub(opened), ready.Sub(led), ready.Sub(start)
	r.heapAfter, r.rssAfter = procmem.HeapInUse()-base, procmem.RSS()
	return r, nil
}

// open opens the one member n1 of its own cluster on dir.
func open(network *transport.Network, dir string) (*kvstore.Node, error) {
	tr, err := network.Join("n1")
	if err != nil {
		return nil, err
	}
	return kvstore.Open(dir, kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}))
}

// load puts n keys of 23 bytes, as ../shared/scale does: 16 writers, txns
// of 100 puts.
func load(ctx context.Context, node *kvstore.Node, n, valueSize int) error {
	const writers, perTxn = 16, 100
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for {
				lo := int(next.Add(perTxn)) - perTxn
				if lo >= n {
					return
				}
				ops := make([]kvstore.Op, 0, perTxn)
				for i := lo; i < min(lo+perTxn, n); i++ {
					ops = append(ops, kvstore.OpPut(fmt.Appendf(nil, "/registry/pods/%08d", i), value))
				}
				if _, err := node.Txn(ctx).Then(ops...).Commit(); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func countKeys(ctx context.Context, node *kvstore.Node) (int64, error) {
	resp, err := node.Get(ctx, []byte("/registry/"), kvstore.WithPrefix(), kvstore.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Count, nil
}
