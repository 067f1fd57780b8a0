package robustness_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/robustness"
	"github.com/kvstore/kvstore/kvtest"
)

// ciSeeds run on every `go test ./...`: seeds 1…100, about a minute with
// -race on two cores. Each seed injects every fault kind once (and two
// kinds twice), in its own order and timing.
var ciSeeds = func() []uint64 {
	var seeds []uint64
	for s := range uint64(100) {
		seeds = append(seeds, s+1)
	}
	return seeds
}()

// Environment variables for longer runs:
//
//	KVSTORE_ROBUSTNESS_SEEDS=N   also run seeds 1000…1000+N-1 (a soak)
//	KVSTORE_ROBUSTNESS_SEED=S    run seed S alone (replaying a failure)
const (
	envSeeds = "KVSTORE_ROBUSTNESS_SEEDS"
	envSeed  = "KVSTORE_ROBUSTNESS_SEED"
)

func TestRobustness(t *testing.T) {
	seeds := ciSeeds
	if s := os.Getenv(envSeed); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSeed, s, err)
		}
		seeds = []uint64{seed}
	}
	if s := os.Getenv(envSeeds); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a count of seeds", envSeeds, s)
		}
		for i := range n {
			seeds = append(seeds, 1000+uint64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runSeed(t, seed)
		})
	}
}

// runResult is what a run recorded, for the checks made outside the
// bubble (porcupine's timeout needs real time).
type runResult struct {
	hist     *robustness.History
	segs     []robustness.WatchSegment
	lastSegs []robustness.WatchSegment
	final    int64
}

func runSeed(t *testing.T, seed uint64) {
	sched := newSchedule(seed)
	var res *runResult
	// The fault log is kept outside the run, so that a run ended by
	// t.Fatal (a member that never caught up) still shows what was done.
	var faultLog []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with %s=%d; %v", envSeed, seed, sched)
			for _, l := range faultLog {
				t.Log("  ", l)
			}
		}
	})
	synctest.Test(t, func(t *testing.T) { res = execute(t, sched, &faultLog) })
	if t.Failed() || res == nil {
		return
	}
	t.Log(faultLog[len(faultLog)-1]) // the run's summary
	check(t, seed, res)
}

// execute runs the traffic, the watchers and the nemesis on a new cluster.
// It appends what the nemesis did to faultLog as it goes.
func execute(t *testing.T, sched schedule, faultLog *[]string) *runResult {
	events := &raftEvents{}
	c := kvtest.NewCluster(t, sched.Nodes, kvtest.WithNodeOptions(
		// Few trailing logs: a follower that falls behind a snapshot must
		// install it.
		kvstore.WithTrailingLogs(16),
		kvstore.WithWatchProgressInterval(250*time.Millisecond),
		kvstore.WithLogger(slog.New(events)),
		// The model knows only the clients' compactions.
		kvstore.WithAutoCompaction(kvstore.AutoCompactionOff, 0),
	))
	c.WaitLeader()
	reg := &registry{nodes: make([]*kvstore.Node, sched.Nodes), inc: make([]int, sched.Nodes)}
	hist := &robustness.History{}
	nem := &nemesis{c: c, reg: reg, hist: hist, log: faultLog, client: sched.Clients}
	nem.refresh()

	watchCtx, stopWatches := context.WithCancel(context.Background())
	ws := &watchers{reg: reg, covered: make([]int64, sched.Nodes)}
	var wg sync.WaitGroup
	for i := range sched.Nodes {
		wg.Go(func() { ws.run(watchCtx, i) })
	}

	trafficCtx, stopTraffic := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	for id := range sched.Clients {
		cl := &client{id: id, node: id % sched.Nodes, rng: newClientRand(sched.Seed, id), reg: reg, hist: hist}
		clients.Go(func() { cl.run(trafficCtx) })
	}
	// On every way out (t.Fatal included) the clients and watchers end
	// before the bubble does.
	defer func() {
		stopTraffic()
		stopWatches()
		clients.Wait()
		wg.Wait()
	}()

	time.Sleep(200 * time.Millisecond) // traffic before the first fault
	for _, f := range sched.Faults {
		nem.run(f)
	}
	nem.recover()
	c.WaitLeader()
	time.Sleep(300 * time.Millisecond) // traffic on the healed cluster
	stopTraffic()
	clients.Wait()
	nem.logf("traffic stopped")

	// Every member applies everything; the watches deliver it.
	c.WaitApplied()
	ctx, cancel := context.WithTimeout(context.Background(), kvtest.Timeout)
	defer cancel()
	get, err := c.WaitLeader().Get(ctx, []byte("k"), kvstore.WithPrefix(), kvstore.WithCountOnly())
	if err != nil {
		t.Fatalf("reading the final revision: %v", err)
	}
	final := get.Header.Revision
	deadline := time.Now().Add(kvtest.Timeout)
	for !ws.allCovered(final) {
		if time.Now().After(deadline) {
			t.Errorf("watches did not deliver up to the final revision %d: %v", final, ws.coveredRevs())
			break
		}
		for _, n := range c.Nodes() {
			n.RequestProgress(ctx)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopWatches()
	wg.Wait()
	ops, unknown, reads := hist.Counts()
	nem.logf("final revision %d; %d operations (%d unknown outcome), %d serializable reads, %d watch segments; raft: %s",
		final, ops, unknown, reads, len(ws.segs), events)
	return &runResult{hist: hist, segs: ws.segs, lastSegs: ws.lastSegs, final: final}
}

// check verifies the recorded history: linearizability, the watches, the
// serializable reads.
func check(t *testing.T, seed uint64, res *runResult) {
	ops := res.hist.Operations()
	compactRevs := map[int64]bool{}
	for _, op := range ops {
		if req := op.Input.(robustness.Request); req.Kind == robustness.OpCompact {
			compactRevs[req.Revision] = true
		}
	}
	ref, errs := robustness.BuildReference(res.segs, res.final, compactRevs)
	stats, watchErrs := robustness.CheckWatches(res.segs, res.lastSegs, ref)
	errs = append(errs, watchErrs...)
	if stats.LowBookmarks > 0 {
		t.Logf("%d progress notifications below their watch's start revision (restarted node behind; see WatchStats)", stats.LowBookmarks)
	}
	errs = append(errs, robustness.CheckWrites(ops, ref)...)
	skipped, rollbacks, readErrs := robustness.CheckSerializable(res.hist.Reads(), ref.States)
	errs = append(errs, readErrs...)
	// A node's reads going back (an older snapshot installed over its
	// state) is a failure: the FSM refuses older snapshots.
	errs = append(errs, rollbacks...)
	for i, err := range errs {
		if i == 20 {
			t.Errorf("... and %d more", len(errs)-i)
			break
		}
		t.Error(err)
	}
	if skipped > 0 {
		t.Logf("%d serializable reads beyond the replayed revisions were not checked", skipped)
	}

	ops = robustness.Patch(ops, ref)
	unknown := map[robustness.OpKind]int{}
	for _, op := range ops {
		if op.Output.(robustness.Response).Unknown {
			unknown[op.Input.(robustness.Request).Kind]++
		}
	}
	start := time.Now()
	result, info := porcupine.CheckOperationsVerbose(robustness.Model, ops, time.Minute)
	t.Logf("porcupine: %v in %v for %d operations (unknown outcome after patching: %v)", result, time.Since(start).Round(time.Millisecond), len(ops), unknown)
	if result == porcupine.Ok {
		return
	}
	dir, err := os.MkdirTemp("", "kvstore-robustness-")
	path := filepath.Join(dir, fmt.Sprintf("seed-%d.html", seed))
	if err == nil {
		err = porcupine.VisualizePath(robustness.Model, info, path)
	}
	if err == nil {
		// The history itself, to re-check offline (raft's interleaving
		// makes a seed replay the schedule, not the same history).
		var data []byte
		if data, err = json.Marshal(ops); err == nil {
			err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d.json", seed)), data, 0o644)
		}
	}
	if err != nil {
		path = fmt.Sprintf("(could not write the visualization: %v)", err)
	}
	switch result {
	case porcupine.Illegal:
		t.Errorf("the history is not linearizable; porcupine's visualization: %s", path)
		for i, line := range robustness.Explain(ops, ref) {
			if i == 10 {
				break
			}
			t.Log("  suspect:", line)
		}
	default:
		t.Errorf("porcupine could not decide linearizability in time (%v); visualization: %s", result, path)
	}
}

// watchers keeps one watch of every key on every node, resumed whenever it
// ends, and records what each delivered.
type watchers struct {
	reg *registry

	mu       sync.Mutex
	segs     []robustness.WatchSegment
	lastSegs []robustness.WatchSegment
	covered  []int64 // per node, the last revision its watch covered
}

func (w *watchers) allCovered(rev int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.covered {
		if c < rev {
			return false
		}
	}
	return true
}

func (w *watchers) coveredRevs() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.covered...)
}

// run watches node i until ctx ends.
func (w *watchers) run(ctx context.Context, i int) {
	next := int64(1)
	for ctx.Err() == nil {
		n, inc := w.reg.get(i)
		if n == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ch, err := n.Watch(ctx, []byte("k"), kvstore.WithPrefix(), kvstore.WithPrevKV(), kvstore.WithProgressNotify(), kvstore.WithRev(next))
		if err != nil {
			if !errors.Is(err, kvstore.ErrClosed) {
				panic(fmt.Sprintf("robustness: opening a watch on node %d from %d: %v", i, next, err))
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		seg := robustness.WatchSegment{Node: i, Incarnation: inc, Start: next}
		for resp := range ch {
			r := robustness.WatchResponse{Revision: resp.Revision, Progress: resp.IsProgressNotify(), Canceled: resp.Canceled, CompactRevision: resp.CompactRevision}
			for _, e := range resp.Events {
				r.Events = append(r.Events, watchEvent(e))
			}
			seg.Responses = append(seg.Responses, r)
			switch {
			case len(r.Events) > 0:
				next = max(next, r.Events[len(r.Events)-1].Revision+1)
			case r.Progress:
				next = max(next, r.Revision+1)
			case r.CompactRevision > 0:
				next = max(next, r.CompactRevision)
			}
			w.mu.Lock()
			w.covered[i] = next - 1
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.segs = append(w.segs, seg)
		if ctx.Err() != nil {
			w.lastSegs = append(w.lastSegs, seg)
		}
		w.mu.Unlock()
	}
}

func watchEvent(e kvstore.Event) robustness.WatchEvent {
	out := robustness.WatchEvent{Revision: e.KV.ModRevision, Delete: e.Type == kvstore.EventDelete, Key: keyIndex(e.KV.Key)}
	if out.Delete {
		out.KV = robustness.KV{Mod: e.KV.ModRevision}
	} else {
		out.KV = modelKV(&e.KV)
	}
	if e.PrevKV != nil {
		prev := modelKV(e.PrevKV)
		out.PrevKV = &prev
	}
	return out
}

// raftEvents counts the raft log messages that show a fault took effect
// (a snapshot installed, a leader elected), for the run's summary.
type raftEvents struct {
	mu               sync.Mutex
	installs, leader int
}

func (e *raftEvents) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (e *raftEvents) WithAttrs([]slog.Attr) slog.Handler           { return e }
func (e *raftEvents) WithGroup(string) slog.Handler                { return e }

func (e *raftEvents) Handle(_ context.Context, r slog.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case strings.Contains(r.Message, "Installed remote snapshot"):
		e.installs++
	case strings.Contains(r.Message, "entering leader state"):
		e.leader++
	}
	return nil
}

func (e *raftEvents) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("%d snapshots installed, %d leaders elected", e.installs, e.leader)
}
