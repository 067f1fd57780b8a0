// grpcbench drives a kvstore cluster through etcd's own client, over real
// gRPC on loopback, with the workloads and the output of the etcd anchor
// harness (etcdbench, run with -members 3 and without -inproc): the same
// members in one process on 127.0.0.1, fsync on, 256 B values, the same
// clientv3 calls. Run it beside etcdbench in the same window and compare
// the summaries line by line:
//
//	cd etcdapi && go run ./examples/grpcbench -members 3 -repeat 3
//
// Each repetition starts a fresh cluster: kvstore nodes (raft-wal, fsync'd,
// peers over kvstore's TCP transport on loopback), each serving etcd's API
// (etcdapi.Server on its own grpc.Server, created with etcdapi.ServerOptions).
// The workloads and their names are etcdbench's: put-seq-1client,
// put-c64-{leader,all}, get-seq-{linz,serial}-{leader,follower},
// get-c64-{linz,serial}-all, watch-seq and watch-c64 (latency = put issued
// -> event received).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/internal/proccpu"
	"github.com/kvstore/kvstore/transport"
)

var (
	flagMembers   = flag.Int("members", 3, "cluster size")
	flagRepeat    = flag.Int("repeat", 3, "fresh-cluster repetitions")
	flagDir       = flag.String("dir", "", "data root (default: a new temporary directory; wiped at start and end)")
	flagPort      = flag.Int("port", 26000, "first TCP port on 127.0.0.1 (each repetition uses 2*members ports)")
	flagVal       = flag.Int("val", 256, "value size in bytes")
	flagSeqPuts   = flag.Int("seq-puts", 2000, "sequential puts from one client")
	flagConcPuts  = flag.Int("conc-puts", 10000, "puts issued by -conc goroutines")
	flagConc      = flag.Int("conc", 64, "concurrent goroutines")
	flagConns     = flag.Int("conns", 6, "client connections (clientv3.Client) for concurrent workloads")
	flagSeqGets   = flag.Int("seq-gets", 5000, "sequential gets from one client (per consistency/target)")
	flagGets      = flag.Int("gets", 100000, "gets issued by -conc goroutines (per consistency)")
	flagWatchPuts = flag.Int("watch-puts", 10000, "puts observed by watchers (per watch workload)")
	flagServe     = flag.Bool("serve", false, "only start the cluster, print endpoints, and serve until SIGINT/SIGTERM (for external tools such as etcd's tools/benchmark)")
	flagQuiet     = flag.Duration("wait-quiet", 2*time.Minute, "before each repetition wait up to this long for other processes to use <0.15 cores (0 = don't wait)")
	flagSyncRing  = flag.Bool("sync-ring", true, "under concurrent writes, raft-wal flushes through io_uring (kvstore.WithSyncRing)")
	flagPrewrite  = flag.Bool("prewrite", runtime.GOOS == "linux", "zeros written ahead of the raft-wal log's end, so appends overwrite written blocks (kvstore.WithSegmentPrewrite)")
	flagOnly      = flag.String("only", "", "comma-separated workload name prefixes to run (default all)")
	flagCPUProf   = flag.String("cpuprofile", "", "write a CPU profile of the whole run (servers and clients) to this file")
	flagBlockProf = flag.String("blockprofile", "", "write a profile of where goroutines blocked over the whole run (servers and clients) to this file")
)

// ---------- stats ----------

type result struct {
	name    string
	ops     int
	elapsed time.Duration
	lat     []time.Duration // sorted
	cpu     float64         // process CPU cores used (utime+stime / wall)
	other   float64         // CPU cores used by other processes meanwhile (interference)
	extra   string
}

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s))*p+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func (r *result) qps() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r *result) String() string {
	return fmt.Sprintf("%-26s n=%-6d %8.0f op/s  p50=%-9s p90=%-9s p99=%-9s p99.9=%-9s max=%-9s cpu=%.2f other=%.2f cores %s",
		r.name, r.ops, r.qps(), rd(pct(r.lat, .50)), rd(pct(r.lat, .90)), rd(pct(r.lat, .99)),
		rd(pct(r.lat, .999)), rd(pct(r.lat, 1)), r.cpu, r.other, r.extra)
}

func rd(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// cpuSnap samples this process's CPU time and the machine-wide busy/total
// jiffies from /proc/stat, so each workload can report its own CPU use and the
// CPU used by other processes on the machine during the run (interference).
type cpuSnap struct {
	self        time.Duration
	busy, total uint64
	at          time.Time
}

func procStat() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line := strings.SplitN(string(b), "\n", 2)[0]
	f := strings.Fields(line)
	for i, x := range f[1:] {
		v, _ := strconv.ParseUint(x, 10, 64)
		if i >= 8 { // guest, guest_nice are included in user/nice
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return
}

func snap() cpuSnap {
	b, t := procStat()
	return cpuSnap{self: proccpu.Used(), busy: b, total: t, at: time.Now()}
}

// since returns (cores used by this process, cores used by everything else).
func (s cpuSnap) since() (self, other float64) {
	now := snap()
	wall := now.at.Sub(s.at)
	self = float64(now.self-s.self) / float64(wall)
	if dt := now.total - s.total; dt > 0 {
		sys := float64(now.busy-s.busy) / float64(dt) * float64(runtime.NumCPU())
		other = sys - self
		if other < 0 {
			other = 0
		}
	}
	return
}

// waitQuiet waits (up to max) until other processes use < thresh cores over 1s.
func waitQuiet(max time.Duration, thresh float64) float64 {
	deadline := time.Now().Add(max)
	for {
		s := snap()
		time.Sleep(time.Second)
		_, other := s.since()
		if other < thresh || time.Now().After(deadline) {
			return other
		}
	}
}

// measure runs n ops via `workers` goroutines; op(worker, i) executes op i.
func measure(name string, n, workers int, op func(w, i int) error) (*result, error) {
	lat := make([]time.Duration, n)
	var next int64 = -1
	var firstErr atomic.Value
	var wg sync.WaitGroup
	c0 := snap()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(w, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	cpu, other := c0.since()
	if e := firstErr.Load(); e != nil {
		return nil, fmt.Errorf("%s: %v", name, e)
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return &result{name: name, ops: n, elapsed: el, lat: lat, cpu: cpu, other: other}, nil
}

// ---------- cluster ----------

// member is one kvstore node with etcd's API served on its client URL.
type member struct {
	node *kvstore.Node
	api  *etcdapi.Server
	gs   *grpc.Server
}

type cluster struct {
	members   []*member
	clientURL []string
	leader    int // index into members
}

func startCluster(rep int) (*cluster, error) {
	n := *flagMembers
	base := *flagPort + rep*2*n
	token := fmt.Sprintf("grpcbench-%d-%d", os.Getpid(), rep)
	peers := make([]kvstore.Peer, n)
	for i := range n {
		peers[i] = kvstore.Peer{ID: fmt.Sprintf("m%d", i), Address: fmt.Sprintf("127.0.0.1:%d", base+2*i+1)}
	}
	c := &cluster{members: make([]*member, n)}
	for i, p := range peers {
		m, url, err := startMember(rep, p, peers, token, fmt.Sprintf("127.0.0.1:%d", base+2*i))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("member %s: %w", p.ID, err)
		}
		c.members[i] = m
		c.clientURL = append(c.clientURL, url)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		for i, m := range c.members {
			if m.node.IsLeader() {
				c.leader = i
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			c.close()
			return nil, errors.New("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startMember(rep int, self kvstore.Peer, peers []kvstore.Peer, token, clientAddr string) (*member, string, error) {
	tr, err := transport.NewTCP(self.Address)
	if err != nil {
		return nil, "", err
	}
	node, err := kvstore.Open(filepath.Join(*flagDir, fmt.Sprintf("rep%d", rep), self.ID),
		kvstore.WithID(self.ID), kvstore.WithTransport(tr), kvstore.WithBootstrap(peers...),
		kvstore.WithClusterToken(token), kvstore.WithSyncRing(*flagSyncRing), kvstore.WithSegmentPrewrite(*flagPrewrite))
	if err != nil {
		tr.Close()
		return nil, "", err
	}
	lis, err := net.Listen("tcp", clientAddr)
	if err != nil {
		node.Close()
		return nil, "", err
	}
	url := "http://" + lis.Addr().String()
	m := &member{
		node: node,
		api:  etcdapi.NewServer(node, etcdapi.WithClusterToken(token), etcdapi.WithAdvertiseClientURLs(url)),
		gs:   grpc.NewServer(etcdapi.ServerOptions()...),
	}
	m.api.Register(m.gs)
	go m.gs.Serve(lis)
	return m, url, nil
}

func (c *cluster) close() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		if m != nil {
			wg.Go(func() {
				m.gs.Stop()
				m.api.Close()
				m.node.Close()
			})
		}
	}
	wg.Wait()
}

func (c *cluster) follower() int {
	if len(c.members) == 1 {
		return 0
	}
	return (c.leader + 1) % len(c.members)
}

func newClient(eps []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// clients returns k clients; target "leader" puts all on the leader, "all"
// assigns members round-robin (one endpoint per client, like etcd's benchmark tool).
func (c *cluster) clients(k int, target string) ([]*clientv3.Client, error) {
	out := make([]*clientv3.Client, k)
	for i := 0; i < k; i++ {
		ep := c.clientURL[c.leader]
		if target == "all" {
			ep = c.clientURL[i%len(c.clientURL)]
		} else if target == "follower" {
			ep = c.clientURL[c.follower()]
		}
		cl, err := newClient([]string{ep})
		if err != nil {
			return nil, err
		}
		out[i] = cl
	}
	return out, nil
}

func closeAll(cs []*clientv3.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// ---------- workloads ----------

func want(name string) bool {
	if *flagOnly == "" {
		return true
	}
	for _, p := range strings.Split(*flagOnly, ",") {
		if p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func opctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func runRep(rep int) ([]*result, error) {
	c, err := startCluster(rep)
	if err != nil {
		return nil, err
	}
	defer c.close()
	fmt.Printf("--- rep %d: %d member(s) up, leader=m%d, client URLs %v\n", rep, len(c.members), c.leader, c.clientURL)
	val := strings.Repeat("v", *flagVal)
	var res []*result
	add := func(r *result, err error) error {
		if err != nil {
			return err
		}
		fmt.Println("  " + r.String())
		res = append(res, r)
		return nil
	}

	// warm-up: a few hundred puts and gets (not recorded)
	{
		cs, err := c.clients(1, "leader")
		if err != nil {
			return nil, err
		}
		for i := 0; i < 300; i++ {
			ctx, cancel := opctx()
			_, err := cs[0].Put(ctx, fmt.Sprintf("/bench/warm/%08d", i), val)
			cancel()
			if err != nil {
				return nil, err
			}
		}
		closeAll(cs)
	}

	// (i) sequential puts, 1 client -> leader
	if want("put-seq") {
		cs, err := c.clients(1, "leader")
		if err != nil {
			return nil, err
		}
		if err := add(measure("put-seq-1client", *flagSeqPuts, 1, func(w, i int) error {
			ctx, cancel := opctx()
			defer cancel()
			_, err := cs[0].Put(ctx, fmt.Sprintf("/bench/s/%08d", i), val)
			return err
		})); err != nil {
			return nil, err
		}
		closeAll(cs)
	}

	// (ii) concurrent puts: leader-only and all-members
	for _, target := range []string{"leader", "all"} {
		name := fmt.Sprintf("put-c%d-%s", *flagConc, target)
		if !want(name) || (target == "all" && len(c.members) == 1) {
			continue
		}
		cs, err := c.clients(*flagConns, target)
		if err != nil {
			return nil, err
		}
		if err := add(measure(name, *flagConcPuts, *flagConc, func(w, i int) error {
			ctx, cancel := opctx()
			defer cancel()
			_, err := cs[w%len(cs)].Put(ctx, fmt.Sprintf("/bench/c%s/%08d", target, i), val)
			return err
		})); err != nil {
			return nil, err
		}
		closeAll(cs)
	}

	// (iii) gets of one existing key (like etcd's `benchmark range KEY`)
	{
		cs, err := c.clients(1, "leader")
		if err != nil {
			return nil, err
		}
		ctx, cancel := opctx()
		_, err = cs[0].Put(ctx, "/bench/getkey", val)
		cancel()
		closeAll(cs)
		if err != nil {
			return nil, err
		}
	}
	type cons struct {
		tag  string
		opts []clientv3.OpOption
	}
	consistencies := []cons{{"linz", nil}, {"serial", []clientv3.OpOption{clientv3.WithSerializable()}}}
	seqTargets := []string{"leader", "follower"}
	if len(c.members) == 1 {
		seqTargets = []string{"leader"}
	}
	for _, cn := range consistencies {
		for _, target := range seqTargets {
			name := fmt.Sprintf("get-seq-%s-%s", cn.tag, target)
			if !want(name) {
				continue
			}
			cs, err := c.clients(1, target)
			if err != nil {
				return nil, err
			}
			if err := add(measure(name, *flagSeqGets, 1, func(w, i int) error {
				ctx, cancel := opctx()
				defer cancel()
				r, err := cs[0].Get(ctx, "/bench/getkey", cn.opts...)
				if err == nil && len(r.Kvs) != 1 {
					err = fmt.Errorf("key missing")
				}
				return err
			})); err != nil {
				return nil, err
			}
			closeAll(cs)
		}
	}
	for _, cn := range consistencies {
		name := fmt.Sprintf("get-c%d-%s-all", *flagConc, cn.tag)
		if !want(name) {
			continue
		}
		cs, err := c.clients(*flagConns, "all")
		if err != nil {
			return nil, err
		}
		if err := add(measure(name, *flagGets, *flagConc, func(w, i int) error {
			ctx, cancel := opctx()
			defer cancel()
			r, err := cs[w%len(cs)].Get(ctx, "/bench/getkey", cn.opts...)
			if err == nil && len(r.Kvs) != 1 {
				err = fmt.Errorf("key missing")
			}
			return err
		})); err != nil {
			return nil, err
		}
		closeAll(cs)
	}

	// (iv) watch: prefix watchers on the leader and (3-node) on a follower;
	// writers put to the leader. Latency = watcher receive time - put issue time.
	for _, mode := range []string{"seq", fmt.Sprintf("c%d", *flagConc)} {
		name := "watch-" + mode
		if !want(name) {
			continue
		}
		rs, err := watchBench(c, name, mode == "seq", val)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if err := add(r, nil); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

func watchBench(c *cluster, name string, seq bool, val string) ([]*result, error) {
	n := *flagWatchPuts
	prefix := "/bench/" + name + "/"
	targets := []string{"leader", "follower"}
	if len(c.members) == 1 {
		targets = []string{"leader"}
	}
	sendT := make([]int64, n)
	ackT := make([]int64, n)
	recvT := make([][]int64, len(targets))
	var wwg sync.WaitGroup
	ctxW, cancelW := context.WithCancel(context.Background())
	defer cancelW()
	var wclients []*clientv3.Client
	defer func() { closeAll(wclients) }()
	for ti, t := range targets {
		cs, err := c.clients(1, t)
		if err != nil {
			return nil, err
		}
		wclients = append(wclients, cs...)
		recvT[ti] = make([]int64, n)
		wch := cs[0].Watch(ctxW, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		first := <-wch // created notification
		if !first.Created {
			return nil, fmt.Errorf("watch not created: %v", first.Err())
		}
		wwg.Add(1)
		go func(rt []int64) {
			defer wwg.Done()
			got := 0
			for wr := range wch {
				now := time.Now().UnixNano()
				for _, ev := range wr.Events {
					k := string(ev.Kv.Key[len(prefix):])
					i, err := strconv.Atoi(k)
					if err == nil && i < n && rt[i] == 0 {
						rt[i] = now
						got++
					}
				}
				if got == n {
					return
				}
			}
		}(recvT[ti])
	}
	workers, conns := *flagConc, *flagConns
	if seq {
		workers, conns = 1, 1
	}
	pcs, err := c.clients(conns, "leader")
	if err != nil {
		return nil, err
	}
	defer closeAll(pcs)
	c0 := snap()
	start := time.Now()
	var next int64 = -1
	var pwg sync.WaitGroup
	var perr atomic.Value
	for w := 0; w < workers; w++ {
		pwg.Add(1)
		go func(w int) {
			defer pwg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= n {
					return
				}
				ctx, cancel := opctx()
				atomic.StoreInt64(&sendT[i], time.Now().UnixNano())
				_, err := pcs[w%len(pcs)].Put(ctx, fmt.Sprintf("%s%08d", prefix, i), val)
				ackT[i] = time.Now().UnixNano()
				cancel()
				if err != nil {
					perr.CompareAndSwap(nil, err)
					return
				}
			}
		}(w)
	}
	pwg.Wait()
	if e := perr.Load(); e != nil {
		return nil, fmt.Errorf("%s: %v", name, e)
	}
	done := make(chan struct{})
	go func() { wwg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: watchers did not receive all %d events", name, n)
	}
	el := time.Since(start)
	cpu, other := c0.since()
	var out []*result
	for ti, t := range targets {
		e2e := make([]time.Duration, n)
		afterAck := make([]time.Duration, n)
		early := 0
		for i := 0; i < n; i++ {
			e2e[i] = time.Duration(recvT[ti][i] - sendT[i])
			afterAck[i] = time.Duration(recvT[ti][i] - ackT[i])
			if afterAck[i] < 0 {
				early++
				afterAck[i] = 0
			}
		}
		sort.Slice(e2e, func(a, b int) bool { return e2e[a] < e2e[b] })
		sort.Slice(afterAck, func(a, b int) bool { return afterAck[a] < afterAck[b] })
		out = append(out, &result{
			name: name + "-watcher@" + t, ops: n, elapsed: el, lat: e2e, cpu: cpu, other: other,
			extra: fmt.Sprintf("(lat=put-issue->event; event-after-put-ack p50=%s p99=%s, %d%% events before ack)",
				rd(pct(afterAck, .5)), rd(pct(afterAck, .99)), early*100/n),
		})
	}
	return out, nil
}

// ---------- main ----------

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minmax(xs []float64) (float64, float64) {
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
	}
	return lo, hi
}

func main() {
	flag.Parse()
	if *flagDir == "" {
		d, err := os.MkdirTemp("", "grpcbench")
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAILED:", err)
			os.Exit(1)
		}
		*flagDir = d
	}
	if *flagCPUProf != "" {
		f, err := os.Create(*flagCPUProf)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAILED:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *flagBlockProf != "" {
		runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked, on average
		defer func() {
			f, err := os.Create(*flagBlockProf)
			if err == nil {
				err = errors.Join(pprof.Lookup("block").WriteTo(f, 0), f.Close())
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "FAILED: block profile:", err)
			}
		}()
	}
	fmt.Printf("grpcbench: kvstore through etcdapi over loopback gRPC, %s, GOMAXPROCS=%d, NumCPU=%d, members=%d, val=%dB, conc=%d, conns=%d\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), *flagMembers, *flagVal, *flagConc, *flagConns)
	os.RemoveAll(*flagDir)
	defer os.RemoveAll(*flagDir)
	if *flagServe {
		c, err := startCluster(0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAILED:", err)
			os.Exit(1)
		}
		// seed key "foo" (-val bytes) so `benchmark range foo` reads a real value
		if cl, err := newClient([]string{c.clientURL[c.leader]}); err == nil {
			ctx, cancel := opctx()
			_, err = cl.Put(ctx, "foo", strings.Repeat("v", *flagVal))
			cancel()
			cl.Close()
			if err != nil {
				fmt.Fprintln(os.Stderr, "seed put failed:", err)
			}
		}
		fmt.Printf("serving: pid=%d leader=%s endpoints=%s\n", os.Getpid(), c.clientURL[c.leader], strings.Join(c.clientURL, ","))
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		c.close()
		os.RemoveAll(*flagDir)
		return
	}
	all := map[string][]*result{}
	var order []string
	for rep := 0; rep < *flagRepeat; rep++ {
		if *flagQuiet > 0 {
			o := waitQuiet(*flagQuiet, 0.15)
			fmt.Printf("(other processes' CPU before rep %d: %.2f cores)\n", rep, o)
		}
		rs, err := runRep(rep)
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAILED:", err)
			os.RemoveAll(*flagDir)
			os.Exit(1)
		}
		for _, r := range rs {
			if _, ok := all[r.name]; !ok {
				order = append(order, r.name)
			}
			all[r.name] = append(all[r.name], r)
		}
		os.RemoveAll(filepath.Join(*flagDir, fmt.Sprintf("rep%d", rep)))
	}
	fmt.Printf("\n=== summary: %d member(s), %d repetitions: median [min..max] ===\n", *flagMembers, *flagRepeat)
	fmt.Printf("%-26s %-22s %-24s %-26s %s\n", "workload", "op/s", "p50 ms", "p99 ms", "cpu self/other (median, max other)")
	for _, name := range order {
		rs := all[name]
		var q, p50, p99, cpu, oth []float64
		for _, r := range rs {
			q = append(q, r.qps())
			p50 = append(p50, float64(pct(r.lat, .5))/1e6)
			p99 = append(p99, float64(pct(r.lat, .99))/1e6)
			cpu = append(cpu, r.cpu)
			oth = append(oth, r.other)
		}
		f := func(xs []float64, format string) string {
			lo, hi := minmax(xs)
			return fmt.Sprintf(format+" ["+format+".."+format+"]", median(xs), lo, hi)
		}
		_, maxOth := minmax(oth)
		fmt.Printf("%-26s %-22s %-24s %-26s %.2f/%.2f, %.2f\n", name, f(q, "%.0f"), f(p50, "%.2f"), f(p99, "%.2f"), median(cpu), median(oth), maxOth)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM") {
				fmt.Println("process peak RSS:", strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")))
			}
		}
	}
}
