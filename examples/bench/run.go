package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvstore/kvstore"
)

// runWorkload runs w cfg.runs times, each on a fresh cluster, reporting
// each run on progress, and returns the runs and their medians.
func runWorkload(ctx context.Context, cfg *config, w *workload, d *dataset, root string, prof *profiler, progress io.Writer) workloadResult {
	res := workloadResult{Workload: w.name, Node: "leader", Workers: w.workers(cfg), Status: statusOK}
	if w.follower {
		res.Node = "follower"
	}
	for i := range cfg.runs {
		label := fmt.Sprintf("%s.run%d", w.name, i+1)
		figs, node, unsupported, err := runOnce(ctx, cfg, w, d, root, prof, label, progress)
		switch {
		case err != nil:
			res.Status, res.Error = statusError, err.Error()
			fmt.Fprintf(progress, "%s run %d/%d: error: %v\n", w.name, i+1, cfg.runs, err)
			return res
		case unsupported != nil:
			res.Status, res.Error = statusUnsupported, unsupported.Error()
			fmt.Fprintf(progress, "%s run %d/%d on %s: unsupported: %v\n", w.name, i+1, cfg.runs, node, unsupported)
			return res
		}
		res.Runs = append(res.Runs, figs)
		fmt.Fprintf(progress, "%s run %d/%d on %s: %.0f ops, %.0f ops/s, p50 %s p99 %s p99.9 %s ms, %.1f allocs %.0f B per op\n",
			w.name, i+1, cfg.runs, node, figs.Ops, figs.OpsPerSec, ms(figs.P50), ms(figs.P99), ms(figs.P999), figs.AllocsPerOp, figs.BytesPerOp)
	}
	m := medianFigures(res.Runs)
	res.Median = &m
	return res
}

// runOnce starts a fresh cluster, preloads it if w reads (or -preload-writes),
// and times one run of w on the node w targets. It reports the preload's
// wall time on progress, and with -report-memory the process's heap and RSS
// before the timed window. unsupported is set, with no error, when that
// node refuses the workload as a follower (no forwarding yet).
func runOnce(ctx context.Context, cfg *config, w *workload, d *dataset, root string, prof *profiler, label string, progress io.Writer) (figs figures, node string, unsupported, err error) {
	c, err := startCluster(ctx, cfg, root)
	if err != nil {
		return figs, "", nil, err
	}
	defer func() { err = errors.Join(err, c.close()) }()
	if w.preload || cfg.preloadAll {
		pctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		start := time.Now()
		err := preload(pctx, c, d, cfg.concurrency)
		took := time.Since(start)
		cancel()
		if err != nil {
			return figs, "", nil, err
		}
		fmt.Fprintf(progress, "%s: preloaded %d keys on %d nodes in %.2f s (%.0f keys/s)\n",
			label, len(d.keys), len(c.nodes), took.Seconds(), float64(len(d.keys))/took.Seconds())
	}
	if cfg.memory {
		fmt.Fprintf(progress, "%s: memory before the timed window: %v\n", label, measureMemory())
	}
	var n *kvstore.Node
	if w.follower {
		if n, node = c.follower(); n == nil {
			return figs, "-", errors.New("no follower in a 1-node cluster"), nil
		}
	} else if n, node = c.leader(); n == nil {
		return figs, "", nil, errors.New("the leader stepped down before the run")
	}
	// One untimed op tells whether the node serves this workload at all.
	if err := w.op(ctx, n, d, rand.New(rand.NewPCG(0, 0))); err != nil {
		if w.follower && errors.Is(err, kvstore.ErrNotLeader) {
			return figs, node, err, nil
		}
		return figs, node, nil, fmt.Errorf("first op on %s: %w", node, err)
	}
	win, err := timed(ctx, cfg, w, n, d, prof, label)
	if err != nil {
		return figs, node, nil, fmt.Errorf("on %s: %w", node, err)
	}
	return newFigures(win), node, nil, nil
}

// timed runs w's op on n from w.workers(cfg) goroutines for cfg.duration
// (or cfg.ops ops in all), each op timed on its own, and returns the merged
// latencies, the wall time and the allocations of the whole process. The
// first failing op stops the run.
func timed(ctx context.Context, cfg *config, w *workload, n *kvstore.Node, d *dataset, prof *profiler, label string) (window, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	var (
		stop     atomic.Bool
		left     atomic.Int64
		firstErr atomic.Pointer[error]
	)
	fail := func(err error) {
		firstErr.CompareAndSwap(nil, &err)
		stop.Store(true)
	}
	defer context.AfterFunc(ctx, func() { fail(ctx.Err()) })()
	left.Store(int64(cfg.ops))
	next := func() bool {
		return !stop.Load() && (cfg.ops == 0 || left.Add(-1) >= 0)
	}
	hists := make([]*histogram, w.workers(cfg))
	for i := range hists {
		hists[i] = new(histogram)
	}
	if err := prof.start(label); err != nil {
		return window{}, err
	}
	var wg sync.WaitGroup
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if cfg.ops == 0 {
		defer time.AfterFunc(cfg.duration, func() { stop.Store(true) }).Stop()
	}
	for i, h := range hists {
		rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(start.UnixNano())))
		wg.Go(func() {
			for next() {
				t0 := time.Now()
				if err := w.op(ctx, n, d, rng); err != nil {
					fail(err)
					return
				}
				h.record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	win := window{elapsed: time.Since(start), hist: new(histogram)}
	runtime.ReadMemStats(&after)
	win.mallocs, win.bytes = after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc
	if err := prof.stop(); err != nil {
		return win, err
	}
	if err := firstErr.Load(); err != nil {
		if ctx.Err() != nil && errors.Is(*err, context.DeadlineExceeded) {
			return win, fmt.Errorf("run exceeded -timeout %v: %w", cfg.timeout, *err)
		}
		return win, *err
	}
	for _, h := range hists {
		win.hist.merge(h)
	}
	return win, nil
}
