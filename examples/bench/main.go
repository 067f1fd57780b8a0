// Command bench measures a whole kvstore cluster running in this process:
// the workloads of the repository's BENCHMARKS.md and a few more, each
// timed op by op, reported as ops, ops/s and p50/p99/p99.9 latency.
//
// It starts the cluster with the public API only (transport.NewNetwork,
// Network.Join, kvstore.Open with WithID, WithTransport, WithBootstrap,
// WithLogStore and WithRaftTiming), waits for a leader, preloads the
// keyspace for the read workloads (not timed), and runs each workload
// -runs times, every run on a fresh cluster, printing the median of each
// figure, with the allocations per op of the whole process. Keys are made
// as etcd's benchmark tool makes them. Disk storage lives in a temporary
// directory removed at exit.
//
// Usage:
//
//	go run ./examples/bench [flags]
//	go run ./examples/bench -runs 3
//	go run ./examples/bench -storage memory -workloads get-lin,get-ser
//	go run ./examples/bench -workloads put-64 -cpuprofile cpu.prof
//	go run ./examples/bench -runs 3 -workloads put-seq,get-ser -metrics
//	go run ./examples/bench -keys 1000000 -preload-writes -workloads put-64,get-ser -runs 3 -report-memory
//
// Workloads (-workloads, comma-separated, default all):
//
//	put-seq               1 writer, Put on the leader
//	put-64                -concurrency writers, Put on the leader
//	get-lin               -concurrency readers, linearizable Get on the leader
//	get-ser               -concurrency readers, serializable Get on the leader
//	get-lin-follower-seq  1 reader, linearizable Get on a follower
//
// A workload the target node refuses as a follower (a *kvstore.NotLeaderError,
// while forwarding is not built) is reported as "unsupported: <error>" and
// is not a failure. Any other error stops that workload, is reported, and
// makes the program exit with status 1 (2 for bad flags).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kvstore/kvstore"
)

// config is the parsed command line.
type config struct {
	nodes       int
	storage     string // disk or memory
	logStore    string // wal or bolt (disk only)
	transport   string
	valueSize   int
	keySize     int
	keys        int
	preloadAll  bool
	duration    time.Duration
	ops         int
	concurrency int
	workloads   []workload
	runs        int
	timeout     time.Duration
	heartbeat   time.Duration
	election    time.Duration
	leaderLease time.Duration
	commit      time.Duration
	eager       bool
	syncRing    bool
	prewrite    bool
	cpuProfile  string
	traceFile   string
	blockProf   string
	mutexProf   string
	memProf     string
	json        bool
	metrics     bool
	memory      bool  // -report-memory
	quotaBytes  int64 // kvstore.WithQuotaBytes
	autoCompact time.Duration
}

func (c *config) raftTiming() (heartbeat, election, leaderLease, commit time.Duration) {
	return c.heartbeat, c.election, c.leaderLease, c.commit
}

// autoCompactionOption is -autocompact as a kvstore option.
func (c *config) autoCompactionOption() kvstore.Option {
	if c.autoCompact == 0 {
		return kvstore.WithAutoCompaction(kvstore.AutoCompactionOff, 0)
	}
	return kvstore.WithAutoCompaction(kvstore.AutoCompactionPeriodic, c.autoCompact)
}

// storageOption is where each member keeps its raft state: a fresh
// MemoryStorage with -storage memory, else a data dir with -logstore's
// log store.
func (c *config) storageOption() kvstore.Option {
	switch {
	case c.storage == "memory":
		return kvstore.WithMemoryStorage(kvstore.NewMemoryStorage())
	case c.logStore == "bolt":
		return kvstore.WithLogStore(kvstore.LogStoreBolt)
	}
	return kvstore.WithLogStore(kvstore.LogStoreWAL)
}

func parseFlags(args []string, output io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.IntVar(&c.nodes, "nodes", 3, "cluster members")
	fs.StringVar(&c.storage, "storage", "disk", "disk (fsync'd files in a temp dir removed at exit) or memory")
	fs.StringVar(&c.logStore, "logstore", "wal", "raft log store with -storage disk: wal or bolt")
	fs.StringVar(&c.transport, "transport", "memory", "network between the members: memory, tcp (loopback) or tls (loopback, mutual TLS 1.3)")
	fs.IntVar(&c.valueSize, "value-size", 256, "bytes per value")
	fs.IntVar(&c.keySize, "key-size", 19, "bytes per key")
	fs.Int64Var(&c.quotaBytes, "quota-bytes", 0, "each member's store quota (kvstore.WithQuotaBytes, etcd's --quota-backend-bytes): 0 keeps the default 2 GiB, which a preload of 10M keys of 256 B exceeds; negative turns it off")
	fs.DurationVar(&c.autoCompact, "autocompact", kvstore.DefaultAutoCompactionRetention, "periodic auto-compaction retention (kvstore.WithAutoCompaction); 0 turns auto-compaction off")
	fs.IntVar(&c.keys, "keys", 10_000, "keyspace size (preloaded for the read workloads)")
	fs.BoolVar(&c.preloadAll, "preload-writes", false, "preload the keyspace before the write workloads too (for how writes scale with the store's size)")
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "timed length of each run (unless -ops)")
	fs.IntVar(&c.ops, "ops", 0, "ops per run, shared by the workers, instead of -duration")
	fs.IntVar(&c.concurrency, "concurrency", 64, "workers of the concurrent workloads (and of the preload)")
	list := fs.String("workloads", "all", "comma-separated workloads, or all")
	fs.IntVar(&c.runs, "runs", 1, "runs per workload, each on a fresh cluster; the medians are printed")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "bound on the preload and on each timed run")
	fs.DurationVar(&c.heartbeat, "raft-heartbeat", 0, "raft heartbeat timeout (0: raft's default)")
	fs.DurationVar(&c.election, "raft-election", 0, "raft election timeout (0: raft's default)")
	fs.DurationVar(&c.leaderLease, "raft-lease", 0, "raft leader lease timeout (0: raft's default)")
	fs.DurationVar(&c.commit, "raft-commit", 0, "raft commit timeout (0: raft's default)")
	fs.BoolVar(&c.eager, "eager-append", true, "leaders send new entries to followers while writing them (kvstore.WithEagerAppend)")
	fs.BoolVar(&c.syncRing, "sync-ring", true, "under concurrent writes, raft-wal flushes through io_uring (kvstore.WithSyncRing)")
	fs.BoolVar(&c.prewrite, "prewrite", runtime.GOOS == "linux", "zeros written ahead of the raft-wal log's end, so appends overwrite written blocks (kvstore.WithSegmentPrewrite)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the timed windows to this file")
	fs.StringVar(&c.traceFile, "trace", "", "write an execution trace of the timed windows to this file (go tool trace; -pprof=sched for where goroutines waited for a processor)")
	fs.StringVar(&c.blockProf, "blockprofile", "", "write a block profile of the timed windows to this file")
	fs.StringVar(&c.mutexProf, "mutexprofile", "", "write a mutex profile of the timed windows to this file")
	fs.StringVar(&c.memProf, "memprofile", "", "write an allocation profile of the whole program (start-up included) to this file at exit")
	fs.BoolVar(&c.json, "json", false, "print the results as JSON")
	fs.BoolVar(&c.memory, "report-memory", false, "after each run's preload (or start-up), collect the garbage and print the process's Go heap in use and RSS")
	fs.BoolVar(&c.metrics, "metrics", false, "register every node's Prometheus metrics (kvstore.WithMetrics) on a registry of the cluster's, to measure what they cost")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.workloads, err = selectWorkloads(*list); err != nil {
		return nil, err
	}
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case c.nodes < 1:
		return fmt.Errorf("-nodes %d: need at least 1", c.nodes)
	case c.storage != "disk" && c.storage != "memory":
		return fmt.Errorf("-storage %q: want disk or memory", c.storage)
	case c.logStore != "wal" && c.logStore != "bolt":
		return fmt.Errorf("-logstore %q: want wal or bolt", c.logStore)
	case c.transport != "memory" && c.transport != "tcp" && c.transport != "tls":
		return fmt.Errorf("-transport %q: want memory, tcp or tls", c.transport)
	case c.valueSize < 0 || c.keySize < 1 || c.keys < 1:
		return fmt.Errorf("-value-size %d, -key-size %d, -keys %d: need sizes >= 0, >= 1 and keys >= 1", c.valueSize, c.keySize, c.keys)
	case c.ops < 0 || c.ops == 0 && c.duration <= 0:
		return fmt.Errorf("-ops %d, -duration %v: need a positive one", c.ops, c.duration)
	case c.ops == 0 && c.timeout <= c.duration:
		return fmt.Errorf("-timeout %v must exceed -duration %v", c.timeout, c.duration)
	case c.autoCompact < 0:
		return fmt.Errorf("-autocompact %v: need 0 (off) or a positive retention", c.autoCompact)
	case c.concurrency < 1 || c.runs < 1:
		return fmt.Errorf("-concurrency %d, -runs %d: need at least 1", c.concurrency, c.runs)
	}
	return nil
}

func selectWorkloads(list string) ([]workload, error) {
	all := workloads()
	if list == "all" {
		return all, nil
	}
	var out []workload
	for name := range strings.SplitSeq(list, ",") {
		i := slices.IndexFunc(all, func(w workload) bool { return w.name == strings.TrimSpace(name) })
		if i < 0 {
			var names []string
			for _, w := range all {
				names = append(names, w.name)
			}
			return nil, fmt.Errorf("-workloads: unknown %q (have %s)", name, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	d, err := newDataset(cfg.keys, cfg.keySize, cfg.valueSize)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	root := ""
	if cfg.storage == "disk" {
		if root, err = os.MkdirTemp("", "kvstore-bench-"); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer os.RemoveAll(root)
	}
	prof := &profiler{cpu: cfg.cpuProfile, trace: cfg.traceFile, block: cfg.blockProf, mutex: cfg.mutexProf, mem: cfg.memProf, windows: len(cfg.workloads) * cfg.runs}
	rep := newReport(cfg)
	status := 0
	for i := range cfg.workloads {
		res := runWorkload(ctx, cfg, &cfg.workloads[i], d, root, prof, stderr)
		rep.Results = append(rep.Results, res)
		if res.Status == statusError {
			status = 1
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := prof.writeExit(); err != nil {
		fmt.Fprintln(stderr, "bench: profiles:", err)
		status = 1
	}
	if err := rep.print(stdout, cfg.json); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		status = 1
	}
	if ctx.Err() != nil {
		status = 1
	}
	return status
}

// setup describes the run for the report header.
func setup(c *config) string {
	storage := "memory"
	if c.storage == "disk" {
		storage = "disk (" + c.logStore + ", fsync on)"
	}
	length := c.duration.String() + " per run"
	if c.ops > 0 {
		length = fmt.Sprint(c.ops, " ops per run")
	}
	compaction := "auto-compaction off"
	if c.autoCompact > 0 {
		compaction = "auto-compaction periodic " + c.autoCompact.String()
	}
	timing := "raft timing defaults"
	if c.heartbeat|c.election|c.leaderLease|c.commit != 0 {
		timing = fmt.Sprintf("raft heartbeat %v election %v lease %v commit %v (0 = default)", c.heartbeat, c.election, c.leaderLease, c.commit)
	}
	return fmt.Sprintf("%d nodes, storage %s, %s transport, value %d B, key %d B, %d keys, %s, concurrency %d, "+
		"runs per workload %d (each on a fresh cluster; medians shown), %s, %s, GOMAXPROCS %d, %s %s/%s",
		c.nodes, storage, c.transport, c.valueSize, c.keySize, c.keys, length, c.concurrency,
		c.runs, compaction, timing, runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
