package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/storage"
	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// scrape gathers reg and returns its families by name.
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// sample returns the value of family name's series whose labels include
// want, failing if there is not exactly one.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	var found []*dto.Metric
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(found))
	}
	m := found[0]
	switch f.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s: unexpected type %v", name, f.GetType())
	return 0
}

func member(id string) map[string]string { return map[string]string{"member": id} }

// The metrics a kvtest cluster exports have etcd's names and types, one
// series per member, and follow the operations run on it.
func TestMetricsFollowOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithMetrics(reg)))
		ctx := context.Background()
		leader := c.WaitLeader()

		types := map[string]dto.MetricType{
			"etcd_server_has_leader":                          dto.MetricType_GAUGE,
			"etcd_server_is_leader":                           dto.MetricType_GAUGE,
			"etcd_server_leader_changes_seen_total":           dto.MetricType_COUNTER,
			"etcd_server_proposals_committed_total":           dto.MetricType_GAUGE,
			"etcd_server_proposals_applied_total":             dto.MetricType_GAUGE,
			"etcd_server_proposals_pending":                   dto.MetricType_GAUGE,
			"etcd_server_proposals_failed_total":              dto.MetricType_COUNTER,
			"etcd_server_slow_apply_total":                    dto.MetricType_COUNTER,
			"etcd_debugging_server_lease_expired_total":       dto.MetricType_COUNTER,
			"etcd_mvcc_db_total_size_in_bytes":                dto.MetricType_GAUGE,
			"etcd_mvcc_db_total_size_in_use_in_bytes":         dto.MetricType_GAUGE,
			"etcd_server_quota_backend_bytes":                 dto.MetricType_GAUGE,
			"etcd_debugging_mvcc_keys_total":                  dto.MetricType_GAUGE,
			"etcd_mvcc_put_total":                             dto.MetricType_COUNTER,
			"etcd_mvcc_delete_total":                          dto.MetricType_COUNTER,
			"etcd_mvcc_range_total":                           dto.MetricType_COUNTER,
			"etcd_mvcc_txn_total":                             dto.MetricType_COUNTER,
			"etcd_debugging_mvcc_watcher_total":               dto.MetricType_GAUGE,
			"etcd_debugging_mvcc_slow_watcher_total":          dto.MetricType_GAUGE,
			"etcd_debugging_mvcc_events_total":                dto.MetricType_COUNTER,
			"etcd_disk_wal_fsync_duration_seconds":            dto.MetricType_HISTOGRAM,
			"etcd_debugging_snap_save_total_duration_seconds": dto.MetricType_HISTOGRAM,
			"etcd_server_id":                                  dto.MetricType_GAUGE,
			"etcd_server_version":                             dto.MetricType_GAUGE,
			"etcd_server_go_version":                          dto.MetricType_GAUGE,
		}
		before := scrape(t, reg)
		for name, typ := range types {
			f, ok := before[name]
			switch {
			case !ok:
				t.Errorf("missing %s", name)
			case f.GetType() != typ:
				t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
			case len(f.GetMetric()) != 3:
				t.Errorf("%s has %d series, want one per member", name, len(f.GetMetric()))
			}
		}
		for _, n := range c.Nodes() {
			want := 0.0
			if n == leader {
				want = 1
			}
			if got := sample(t, before, "etcd_server_is_leader", member(n.ID())); got != want {
				t.Errorf("is_leader on %s = %v, want %v", n.ID(), got, want)
			}
			if got := sample(t, before, "etcd_server_has_leader", member(n.ID())); got != 1 {
				t.Errorf("has_leader on %s = %v", n.ID(), got)
			}
			if got := sample(t, before, "etcd_server_leader_changes_seen_total", member(n.ID())); got < 1 {
				t.Errorf("leader_changes_seen_total on %s = %v, want the first election", n.ID(), got)
			}
			if got := sample(t, before, "etcd_server_id", map[string]string{"member": n.ID(), "server_id": n.ID()}); got != 1 {
				t.Errorf("etcd_server_id on %s = %v", n.ID(), got)
			}
		}

		follower := c.Followers()[0]
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events, err := follower.Watch(wctx, []byte("k"), kvstore.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := follower.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := leader.Delete(ctx, []byte("k0")); err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Txn(ctx).Then(kvstore.OpPut([]byte("k9"), []byte("v")), kvstore.OpGet([]byte("k1"))).Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Get(ctx, []byte("k1")); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < 7; {
			got += len((<-events).Events)
		}
		c.WaitApplied()

		after := scrape(t, reg)
		for _, n := range c.Nodes() {
			id := member(n.ID())
			for name, want := range map[string]float64{
				"etcd_mvcc_put_total":            6, // applied on every member: 5 puts and the txn's
				"etcd_mvcc_delete_total":         1,
				"etcd_mvcc_txn_total":            1,
				"etcd_debugging_mvcc_keys_total": 5, // k1-k4, k9
			} {
				if got := sample(t, after, name, id); got != want {
					t.Errorf("%s on %s = %v, want %v", name, n.ID(), got, want)
				}
			}
			if got, was := sample(t, after, "etcd_server_proposals_applied_total", id), sample(t, before, "etcd_server_proposals_applied_total", id); got < was+7 {
				t.Errorf("proposals_applied_total on %s went from %v to %v, want 7 more", n.ID(), was, got)
			}
			if got := sample(t, after, "etcd_server_proposals_pending", id); got != 0 {
				t.Errorf("proposals_pending on %s = %v after every write returned", n.ID(), got)
			}
			if got := sample(t, after, "etcd_mvcc_db_total_size_in_bytes", id); got <= sample(t, before, "etcd_mvcc_db_total_size_in_bytes", id) {
				t.Errorf("db size on %s did not grow: %v", n.ID(), got)
			}
		}
		// The leader's range: the txn's Get (applied everywhere) and the
		// Get served by the leader (on the leader only), plus the
		// linearizable reads kvtest's WaitApplied makes on every member.
		if l, f := sample(t, after, "etcd_mvcc_range_total", member(leader.ID())), sample(t, after, "etcd_mvcc_range_total", member(follower.ID())); l != f+1 {
			t.Errorf("range_total: leader %v, follower %v; want the leader one ahead (its own Get)", l, f)
		}
		if got := sample(t, after, "etcd_debugging_mvcc_watcher_total", member(follower.ID())); got != 1 {
			t.Errorf("watcher_total on the watching follower = %v", got)
		}
		if got := sample(t, after, "etcd_debugging_mvcc_events_total", member(follower.ID())); got != 7 {
			t.Errorf("events_total on the watching follower = %v, want 7", got)
		}
		if got := sample(t, after, "etcd_debugging_mvcc_events_total", member(leader.ID())); got != 0 {
			t.Errorf("events_total on the leader, which has no watch = %v", got)
		}

		// A leader change: every member that sees it counts it, and the
		// leader gauges move.
		next := c.Index(follower)
		changes := sample(t, after, "etcd_server_leader_changes_seen_total", member(follower.ID()))
		if err := c.TransferLeader(next); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		moved := scrape(t, reg)
		if got := sample(t, moved, "etcd_server_leader_changes_seen_total", member(follower.ID())); got <= changes {
			t.Errorf("leader_changes_seen_total on %s stayed at %v after a transfer", follower.ID(), got)
		}
		if got := sample(t, moved, "etcd_server_is_leader", member(follower.ID())); got != 1 {
			t.Errorf("is_leader on the new leader = %v", got)
		}
		if got := sample(t, moved, "etcd_server_is_leader", member(leader.ID())); got != 0 {
			t.Errorf("is_leader on the old leader = %v", got)
		}
	})
}

// Two clusters share a registry when the host labels each; the same
// member IDs on one registry without a label are refused at Open, naming
// the option; a node closed and reopened registers again.
func TestMetricsShareARegistry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		a := kvtest.NewCluster(t, 1, kvtest.WithNodeOptions(kvstore.WithMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"cluster": "a"}, reg))))
		b := kvtest.NewCluster(t, 1, kvtest.WithNodeOptions(kvstore.WithMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"cluster": "b"}, reg))))
		ctx := context.Background()
		a.WaitLeader()
		if _, err := b.WaitLeader().Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		fams := scrape(t, reg)
		if got := sample(t, fams, "etcd_mvcc_put_total", map[string]string{"cluster": "a", "member": "n1"}); got != 0 {
			t.Errorf("cluster a counted %v puts", got)
		}
		if got := sample(t, fams, "etcd_mvcc_put_total", map[string]string{"cluster": "b", "member": "n1"}); got != 1 {
			t.Errorf("cluster b counted %v puts", got)
		}

		same := prometheus.WrapRegistererWith(prometheus.Labels{"cluster": "a"}, reg)
		tr, err := transport.NewNetwork().Join("n1")
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		n, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
			kvstore.WithMetrics(same))
		if err == nil {
			n.Close()
			t.Fatal("a second n1 registered on cluster a's label")
		}
		if !errors.Is(err, kvstore.ErrInvalidOption) || !strings.Contains(err.Error(), "WithMetrics") {
			t.Fatalf("refused registration: %v", err)
		}
		// The refused node withdrew nothing of the n1 that holds the names.
		if got := sample(t, scrape(t, reg), "etcd_server_has_leader", map[string]string{"cluster": "a", "member": "n1"}); got != 1 {
			t.Fatalf("cluster a's n1 after a refused registration: has_leader %v", got)
		}

		a.Stop(0)
		if got := scrape(t, reg)["etcd_mvcc_put_total"]; len(got.GetMetric()) != 1 {
			t.Fatalf("after Close, %d put_total series remain, want cluster b's only", len(got.GetMetric()))
		}
		a.Restart(0)
		a.WaitLeader()
		if got := scrape(t, reg)["etcd_mvcc_put_total"]; len(got.GetMetric()) != 2 {
			t.Fatalf("after a restart, %d put_total series, want both clusters'", len(got.GetMetric()))
		}
	})
}

// A write whose leader never answers counts as a failed proposal; a
// rejection decided in apply does not.
func TestMetricsFailedProposals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithMetrics(reg)))
		leader := c.WaitLeader()
		ctx := context.Background()
		if _, err := leader.Put(ctx, []byte("k"), []byte("v"), kvstore.WithLease(12345)); !errors.Is(err, kvstore.ErrLeaseNotFound) {
			t.Fatalf("put with an unknown lease: %v", err)
		}
		if got := sample(t, scrape(t, reg), "etcd_server_proposals_failed_total", member(leader.ID())); got != 0 {
			t.Fatalf("a rejection in apply counted as a failed proposal: %v", got)
		}
		f := c.Followers()[0]
		c.Isolate(c.Index(f))
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := f.Put(tctx, []byte("k"), []byte("v")); err == nil {
			t.Fatal("an isolated member's write succeeded")
		}
		if got := sample(t, scrape(t, reg), "etcd_server_proposals_failed_total", member(f.ID())); got != 1 {
			t.Fatalf("proposals_failed_total on the isolated member = %v, want 1", got)
		}
		c.Heal()
	})
}

// A slow apply is logged at warn level with its kind and counted, and the
// slow request by the member it was made through; fast ones are not.
func TestSlowRequestsAreLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		logs := &recordLog{}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithMetrics(reg), kvstore.WithLogger(slog.New(logs))))
		leader := c.WaitLeader()
		ctx := context.Background()
		if _, err := leader.Put(ctx, []byte("fast"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if n := logs.count("apply request took too long") + logs.count("request took too long"); n != 0 {
			t.Fatalf("a fast put was logged as slow: %v", logs.all())
		}
		i := c.Index(leader)
		c.SetApplyDelay(i, 150*time.Millisecond) // virtual time, past the default 100ms
		if _, err := leader.Put(ctx, []byte("slow"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		c.SetApplyDelay(i, 0)
		if !logs.has(slog.LevelWarn, "request took too long", map[string]string{"kind": "put", "member": leader.ID()}) {
			t.Errorf("no slow request warning for the put: %v", logs.all())
		}
		if !logs.has(slog.LevelWarn, "apply request took too long", map[string]string{"kind": "put", "member": leader.ID()}) {
			t.Errorf("no slow apply warning for the put: %v", logs.all())
		}
		if n := logs.count("apply request took too long"); n != 1 {
			t.Errorf("%d slow applies logged, want the leader's one: %v", n, logs.all())
		}
		fams := scrape(t, reg)
		for _, n := range c.Nodes() {
			want := 0.0
			if n == leader {
				want = 1
			}
			if got := sample(t, fams, "etcd_server_slow_apply_total", member(n.ID())); got != want {
				t.Errorf("slow_apply_total on %s = %v, want %v", n.ID(), got, want)
			}
		}
	})
}

// Zero turns the slow request log off.
func TestSlowRequestLogOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &recordLog{}
		c := kvtest.NewCluster(t, 1, kvtest.WithNodeOptions(kvstore.WithSlowRequestThreshold(0), kvstore.WithLogger(slog.New(logs))))
		n := c.WaitLeader()
		c.SetApplyDelay(0, time.Second)
		if _, err := n.Put(context.Background(), []byte("slow"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if got := logs.count("apply request took too long") + logs.count("request took too long"); got != 0 {
			t.Fatalf("slow log off, yet %d warnings", got)
		}
	})
}

// recordLog is a slog.Handler that keeps every record's level, message
// and attributes (as text).
type recordLog struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordLog) WithGroup(string) slog.Handler            { return h }
func (h *recordLog) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, rec)
	return nil
}

func (h *recordLog) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.records)
}

func (h *recordLog) count(msg string) int {
	n := 0
	for _, r := range h.all() {
		if r.msg == msg {
			n++
		}
	}
	return n
}

// has reports a record at level with msg and every attribute of want.
func (h *recordLog) has(level slog.Level, msg string, want map[string]string) bool {
	for _, r := range h.all() {
		if r.level != level || r.msg != msg {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && r.attrs[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}

// Negative thresholds are refused at Open with an error naming the option.
func TestSlowRequestThresholdValidated(t *testing.T) {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
		kvstore.WithSlowRequestThreshold(-time.Millisecond))
	if !errors.Is(err, kvstore.ErrInvalidOption) || !strings.Contains(err.Error(), "WithSlowRequestThreshold") {
		t.Fatalf("Open with a negative threshold: %v", err)
	}
}

// On disk, every log append is timed in the fsync histogram and every
// snapshot in the snapshot histogram; in memory nothing is synced, and the
// fsync histogram stays empty. raft-wal's flushes are counted by path, one
// per append; other stores export no such count.
func TestMetricsDiskTimings(t *testing.T) {
	for _, store := range []string{"wal", "bolt", "memory"} {
		t.Run(store, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				opts := []kvtest.Option{kvtest.WithNodeOptions(kvstore.WithMetrics(reg))}
				disk, wal := store != "memory", store == "wal"
				switch store {
				case "wal":
					opts = append(opts, kvtest.WithDisk(kvstore.LogStoreWAL))
				case "bolt":
					opts = append(opts, kvtest.WithDisk(kvstore.LogStoreBolt))
				}
				c := kvtest.NewCluster(t, 1, opts...)
				n := c.WaitLeader()
				start := scrape(t, reg)
				before := sample(t, start, "etcd_disk_wal_fsync_duration_seconds", member("n1"))
				flushes := func(fams map[string]*dto.MetricFamily) float64 {
					n1 := func(path string) map[string]string { return map[string]string{"member": "n1", "path": path} }
					return sample(t, fams, "kvstore_disk_wal_flushes_total", n1("io_uring")) + sample(t, fams, "kvstore_disk_wal_flushes_total", n1("fsync"))
				}
				flushesBefore := 0.0
				if wal {
					flushesBefore = flushes(start)
				} else if _, ok := start["kvstore_disk_wal_flushes_total"]; ok {
					t.Errorf("with %s storage, kvstore_disk_wal_flushes_total is exported", store)
				}
				for i := range 3 {
					if _, err := n.Put(context.Background(), []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Snapshot(0); err != nil {
					t.Fatal(err)
				}
				fams := scrape(t, reg)
				fsyncs := sample(t, fams, "etcd_disk_wal_fsync_duration_seconds", member("n1")) - before
				switch {
				case disk && fsyncs < 3:
					t.Errorf("%v appends timed for 3 puts", fsyncs)
				case !disk && (fsyncs != 0 || before != 0):
					t.Errorf("in memory, %v appends timed as fsyncs", before+fsyncs)
				}
				if wal {
					if got := flushes(fams) - flushesBefore; got != fsyncs {
						t.Errorf("%v flushes counted for %v timed appends", got, fsyncs)
					}
					// The zeros are written by a goroutine of their own after
					// the first appends; virtual time stands still while it
					// writes, so the deadline passes only once it is done.
					prewritten := func() float64 {
						return sample(t, scrape(t, reg), "kvstore_disk_wal_prewritten_bytes_total", member("n1"))
					}
					for deadline := time.Now().Add(10 * time.Second); storage.PrewriteHelps(os.TempDir()) && prewritten() == 0; time.Sleep(10 * time.Millisecond) {
						if time.Now().After(deadline) {
							t.Fatal("no zeros written ahead of the raft-wal log (WithSegmentPrewrite is on by default on Linux's ext4 and XFS)")
						}
					}
				} else if _, ok := fams["kvstore_disk_wal_prewritten_bytes_total"]; ok {
					t.Errorf("with %s storage, kvstore_disk_wal_prewritten_bytes_total is exported", store)
				}
				if got := sample(t, fams, "etcd_debugging_snap_save_total_duration_seconds", member("n1")); got != 1 {
					t.Errorf("%v snapshot saves timed, want 1", got)
				}
			})
		})
	}
}

// A follower's linearizable read reaches the leader as a read-index call;
// with three voters the leader answers it at once, counting the call as
// the follower's acknowledgement (readquorum.go), which needs the follower
// to send its term: the leader's at_once count rises and its round count
// does not. With five voters the pair is no majority, and every call
// waits for a heartbeat round.
func TestMetricsReadIndexCalls(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprint(size, " members"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				c := kvtest.NewCluster(t, size, kvtest.WithNodeOptions(kvstore.WithMetrics(reg)))
				leader := c.WaitLeader()
				ctx := context.Background()
				if _, err := leader.Put(ctx, []byte("k"), []byte("v")); err != nil {
					t.Fatal(err)
				}
				id := c.ID(c.Index(leader))
				calls := func(answer string) float64 {
					return sample(t, scrape(t, reg), "kvstore_server_read_index_calls_total", map[string]string{"member": id, "answer": answer})
				}
				atOnce, round := calls("at_once"), calls("round")
				const reads = 5
				follower := c.Followers()[0]
				for range reads {
					resp, err := follower.Get(ctx, []byte("k"))
					if err != nil {
						t.Fatal(err)
					}
					if len(resp.KVs) != 1 || string(resp.KVs[0].Value) != "v" {
						t.Fatalf("follower read %v, want k=v", resp.KVs)
					}
				}
				gotAtOnce, gotRound := calls("at_once")-atOnce, calls("round")-round
				wantAtOnce, wantRound := float64(reads), 0.0
				if size > 3 {
					wantAtOnce, wantRound = 0, reads
				}
				if gotAtOnce != wantAtOnce || gotRound != wantRound {
					t.Fatalf("%d sequential follower reads: the leader answered %v calls at once and %v after a round; want %v and %v",
						reads, gotAtOnce, gotRound, wantAtOnce, wantRound)
				}
			})
		})
	}
}
