package kvstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore/internal/storage"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// A node's Prometheus metrics, under etcd's names wherever kvstore has the
// concept, so that etcd's dashboards and alerts read a kvstore node as they
// read an etcd member; METRICS.md (beside this file) maps each one to
// etcd's and says what differs. Metrics kvstore alone has are prefixed
// kvstore_.
//
// Nothing is global: a node registers its metrics on the
// prometheus.Registerer its host passes to WithMetrics, every series
// labelled member="<node ID>", and unregisters them at Close, so that many
// nodes share a registry and a node reopened in the same process
// registers again. Without WithMetrics a node's metrics are a nil pointer,
// and every hook below is a method that returns at once on nil.
//
// Most values are read when the registry is gathered (leadership, raft
// indexes, store size and keys, watches); the hot paths pay only for
// counters (an atomic add each) and, on disk storage, two clock reads per
// log append.

// WithMetrics registers the node's metrics on reg (see METRICS.md), each
// series labelled member="<node ID>"; Close unregisters them. Nodes with
// different IDs share a registry freely; to put two clusters whose members
// have the same IDs on one registry, give each its own label with
// prometheus.WrapRegistererWith. If reg refuses the metrics (a node with
// the same ID already registered on it), Open fails with ErrInvalidOption.
// Nil, the default, exports nothing.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error {
		c.metrics = reg
		return nil
	}
}

// diskBuckets is etcd's bucket layout for disk latencies: from 1 ms,
// doubling, to 8 s.
func diskBuckets() []float64 { return prometheus.ExponentialBuckets(0.001, 2, 14) }

// nodeMetrics is one node's metrics and the prometheus.Collector that
// exports them. Counters and histograms are safe for concurrent use; the
// other fields say who writes them.
type nodeMetrics struct {
	// reg is the host's registerer with the member label applied.
	reg prometheus.Registerer
	// node is set by register and read by Collect, which a scrape may run
	// while Close runs.
	node atomic.Pointer[Node]
	// registered is set once reg took the metrics: unregistering metrics
	// that were refused would withdraw those of the node that holds the
	// same names and labels.
	registered atomic.Bool

	leaderChanges    prometheus.Counter
	proposalsPending prometheus.Gauge
	proposalsFailed  prometheus.Counter
	slowApplies      prometheus.Counter
	leasesExpired    prometheus.Counter
	ranges           prometheus.Counter
	puts             prometheus.Counter
	deletes          prometheus.Counter
	txns             prometheus.Counter
	walFsync         prometheus.Histogram
	snapshotSave     prometheus.Histogram
	defrag           prometheus.Histogram   // defragment.go
	corruptChecks    *prometheus.CounterVec // corruption.go
	corruptFound     *prometheus.CounterVec
	readIndexCalls   *prometheus.CounterVec // rpcserver.go
	// readIndexAtOnce and readIndexRound are readIndexCalls' two series.
	readIndexAtOnce, readIndexRound prometheus.Counter

	// lastLeader is the leader last published; only the leadership
	// goroutine touches it.
	lastLeader string

	hasLeader, isLeader, committedIndex, appliedIndex *prometheus.Desc
	dbSize, dbInUse, keys, revision, compact          *prometheus.Desc
	quota                                             *prometheus.Desc
	walFlushes                                        *prometheus.Desc
	walPrewritten                                     *prometheus.Desc
	watchers, slowWatchers, events                    *prometheus.Desc
	serverID, version, goVersion                      *prometheus.Desc
	versionLabel                                      string
	peer                                              peerMetrics
}

// newNodeMetrics returns the metrics of a node with cfg, or nil without
// WithMetrics. They are registered later, by register, once the node runs.
func newNodeMetrics(cfg *config) *nodeMetrics {
	if cfg.metrics == nil {
		return nil
	}
	counter := func(ns, sub, name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	m := &nodeMetrics{
		reg:              prometheus.WrapRegistererWith(prometheus.Labels{"member": cfg.id}, cfg.metrics),
		leaderChanges:    counter("etcd", "server", "leader_changes_seen_total", "The number of leader changes seen."),
		proposalsPending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_pending", Help: "The current number of writes proposed through this member and not yet answered."}),
		proposalsFailed:  counter("etcd", "server", "proposals_failed_total", "The total number of writes proposed through this member that failed before being applied (no leader, lost leadership, timeout, close)."),
		slowApplies:      counter("etcd", "server", "slow_apply_total", "The total number of log entries whose apply took longer than the slow request threshold."),
		leasesExpired:    counter("etcd_debugging", "server", "lease_expired_total", "The total number of expired leases whose revoke this member proposed as leader."),
		ranges:           counter("etcd", "mvcc", "range_total", "Total number of ranges seen by this member."),
		puts:             counter("etcd", "mvcc", "put_total", "Total number of puts seen by this member."),
		deletes:          counter("etcd", "mvcc", "delete_total", "Total number of deletes seen by this member."),
		txns:             counter("etcd", "mvcc", "txn_total", "Total number of txns of more than one operation seen by this member."),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help: "The latency distributions of durable appends to the raft log store (write and fsync).", Buckets: diskBuckets()}),
		snapshotSave: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd_debugging", Subsystem: "snap", Name: "save_total_duration_seconds",
			Help: "The total latency distributions of writing a state machine snapshot to the snapshot store.", Buckets: diskBuckets()}),
		defrag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "backend_defrag_duration_seconds",
			Help: "The latency distribution of rebuilding this member's key index (Defragment).", Buckets: prometheus.ExponentialBuckets(.001, 2, 14)}),

		corruptChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kvstore", Subsystem: "corruption", Name: "checks_total",
			Help: "The total number of corruption check rounds this member ran that compared hashes (check: initial or compact)."}, []string{"check"}),
		corruptFound: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kvstore", Subsystem: "corruption", Name: "mismatches_total",
			Help: "The total number of corruption check rounds this member ran that found members' hashes differing (check: initial or compact)."}, []string{"check"}),
		readIndexCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kvstore", Subsystem: "server", Name: "read_index_calls_total",
			Help: "The total number of followers' read-index calls this member answered as leader, by how (answer: at_once, the call counted as the follower's acknowledgement; round, after a heartbeat round)."}, []string{"answer"}),

		hasLeader:      desc("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not."),
		isLeader:       desc("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise."),
		committedIndex: desc("etcd_server_proposals_committed_total", "The raft index this member knows to be committed."),
		appliedIndex:   desc("etcd_server_proposals_applied_total", "The raft index of the last entry this member's state machine applied."),
		dbSize:         desc("etcd_mvcc_db_total_size_in_bytes", "Bytes the in-memory store holds, history included."),
		dbInUse:        desc("etcd_mvcc_db_total_size_in_use_in_bytes", "Bytes the in-memory store holds, history included (the same as the total: the store has no free pages)."),
		quota:          desc("etcd_server_quota_backend_bytes", "This member's quota of the store's size in bytes (WithQuotaBytes); -1 when off."),
		walFlushes:     desc("kvstore_disk_wal_flushes_total", "The total number of flushes of this member's raft-wal log since it opened, by how they waited (path: io_uring under concurrent writes, or fsync; WithSyncRing).", "path"),
		walPrewritten:  desc("kvstore_disk_wal_prewritten_bytes_total", "The total bytes of zeros written ahead of the end of this member's raft-wal log since it opened, so that appends overwrite written blocks (WithSegmentPrewrite)."),
		keys:           desc("etcd_debugging_mvcc_keys_total", "Total number of keys."),
		revision:       desc("etcd_debugging_mvcc_current_revision", "The current revision of store."),
		compact:        desc("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store."),
		watchers:       desc("etcd_debugging_mvcc_watcher_total", "Total number of watchers."),
		slowWatchers:   desc("etcd_debugging_mvcc_slow_watcher_total", "Total number of watchers catching up from history."),
		events:         desc("etcd_debugging_mvcc_events_total", "Total number of events sent by this member."),
		serverID:       desc("etcd_server_id", "Member ID. 1 for 'server_id' label with current ID.", "server_id"),
		version:        desc("etcd_server_version", "Which kvstore module version is running. 1 for 'server_version' label with current version.", "server_version"),
		goVersion:      desc("etcd_server_go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.", "server_go_version"),
		versionLabel:   moduleVersion(),
		peer:           newPeerMetrics(),
	}
	for _, check := range []string{"initial", "compact"} {
		m.corruptChecks.WithLabelValues(check) // exported at 0 from the start
		m.corruptFound.WithLabelValues(check)
	}
	m.readIndexAtOnce = m.readIndexCalls.WithLabelValues("at_once") // counted as the follower's acknowledgement (readquorum.go)
	m.readIndexRound = m.readIndexCalls.WithLabelValues("round")    // after a heartbeat round
	return m
}

// moduleVersion is the version of the kvstore module linked into this
// binary, as the Go toolchain recorded it ("(devel)" in kvstore's own
// builds, "unknown" without build information).
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if info.Main.Path == "github.com/kvstore/kvstore" {
		return info.Main.Version
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/kvstore/kvstore" {
			return dep.Version
		}
	}
	return "unknown"
}

// register exports the metrics of n, which must be running. A refusal is
// ErrInvalidOption, naming the option and the member.
func (m *nodeMetrics) register(n *Node) error {
	if m == nil {
		return nil
	}
	m.node.Store(n)
	if err := m.reg.Register(m); err != nil {
		return fmt.Errorf("%w: WithMetrics: registering member %s's metrics: %w", ErrInvalidOption, n.cfg.id, err)
	}
	m.registered.Store(true)
	return nil
}

// unregister withdraws the metrics from the host's registry.
func (m *nodeMetrics) unregister() {
	if m == nil || !m.registered.Swap(false) {
		return
	}
	m.reg.Unregister(m)
}

// own lists the metrics that keep their own state.
func (m *nodeMetrics) own() []prometheus.Collector {
	return []prometheus.Collector{m.leaderChanges, m.proposalsPending, m.proposalsFailed, m.slowApplies, m.leasesExpired,
		m.ranges, m.puts, m.deletes, m.txns, m.walFsync, m.snapshotSave, m.defrag, m.corruptChecks, m.corruptFound, m.readIndexCalls}
}

// Describe implements prometheus.Collector.
func (m *nodeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.own() {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{m.hasLeader, m.isLeader, m.committedIndex, m.appliedIndex, m.dbSize, m.dbInUse, m.quota, m.walFlushes, m.walPrewritten, m.keys,
		m.revision, m.compact, m.watchers, m.slowWatchers, m.events, m.serverID, m.version, m.goVersion} {
		ch <- d
	}
	m.peer.describe(ch)
}

// Collect implements prometheus.Collector: the counters as they stand, and
// the node's state read now (locally, never from other members).
func (m *nodeMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.own() {
		c.Collect(ch)
	}
	n := m.node.Load()
	if n == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	info, _ := n.lead.get()
	store := n.fsm.status()
	watches := n.fsm.watchStats()
	gauge(m.hasLeader, boolValue(info.LeaderID != ""))
	gauge(m.isLeader, boolValue(info.LeaderID == n.cfg.id))
	gauge(m.committedIndex, float64(n.raft.CommitIndex()))
	gauge(m.appliedIndex, float64(n.fsm.appliedIndex()))
	gauge(m.dbSize, float64(store.Size))
	gauge(m.dbInUse, float64(store.Size))
	gauge(m.quota, float64(n.cfg.quota()))
	gauge(m.keys, float64(store.Keys))
	gauge(m.revision, float64(store.Revision))
	gauge(m.compact, float64(store.CompactRevision))
	gauge(m.watchers, float64(watches.Watches))
	gauge(m.slowWatchers, float64(watches.CatchingUp))
	ch <- prometheus.MustNewConstMetric(m.events, prometheus.CounterValue, float64(watches.EventsSent))
	if ring, fsync, ok := n.storage.Flushes(); ok {
		ch <- prometheus.MustNewConstMetric(m.walFlushes, prometheus.CounterValue, float64(ring), "io_uring")
		ch <- prometheus.MustNewConstMetric(m.walFlushes, prometheus.CounterValue, float64(fsync), "fsync")
		ch <- prometheus.MustNewConstMetric(m.walPrewritten, prometheus.CounterValue, float64(n.storage.Prewritten()))
	}
	gauge(m.serverID, 1, n.cfg.id)
	gauge(m.version, 1, m.versionLabel)
	gauge(m.goVersion, 1, runtime.Version())
	m.peer.collect(ch, n.cfg.transport)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// watchStats is the watch hub's account of its watches.
func (f *fsm) watchStats() watch.Stats { return f.watches.Stats() }

// leader records the leader the leadership goroutine publishes: a change
// to a leader other than the last one published (none included) is a
// leader change, as etcd counts them.
func (m *nodeMetrics) leader(id string) {
	if m == nil {
		return
	}
	if id != "" && id != m.lastLeader {
		m.leaderChanges.Inc()
	}
	m.lastLeader = id
}

// proposalStarted and proposalEnded bracket a write proposed through this
// member (etcd_server_proposals_pending), and count the ones that failed.
func (m *nodeMetrics) proposalStarted() {
	if m != nil {
		m.proposalsPending.Inc()
	}
}

func (m *nodeMetrics) proposalEnded(err error) {
	if m == nil {
		return
	}
	m.proposalsPending.Dec()
	if proposalFailed(err) {
		m.proposalsFailed.Inc()
	}
}

// proposalFailed reports whether a write's error means it was not applied
// (or not known to be): etcd counts a proposal as failed when raft refused
// it or its wait ended before it applied. A rejection decided in apply (a
// failed lease check, a compacted revision) was applied, and a request
// refused before proposing (too large, invalid) was never proposed: those
// are not failures of the proposal.
func proposalFailed(err error) bool {
	if err == nil || errors.Is(err, ErrDatabaseSpaceExceeded) {
		return false // refused by the quota, or by apply under an alarm
	}
	for _, target := range []error{ErrNoLeader, ErrNotLeader, ErrLeaderUnreachable, ErrOutcomeUnknown, ErrClosed, ErrNoSpace,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// leaseRevokesProposed counts expired leases whose revoke the leader
// proposed.
func (m *nodeMetrics) leaseRevokesProposed(n int) {
	if m != nil && n > 0 {
		m.leasesExpired.Add(float64(n))
	}
}

// applied counts what one applied command did: its puts, deletes and
// ranges (a txn's, in the branch that ran, nested txns included).
// Apply goroutine only.
func (m *nodeMetrics) applied(res *applyResult) {
	if m == nil || res.Err != nil {
		return
	}
	switch {
	case res.Put != nil:
		m.puts.Inc()
	case res.Delete != nil:
		m.deletes.Inc()
	case res.Txn != nil:
		m.countTxn(res.Txn)
	}
}

// countTxn counts the operations of a txn's branch that ran, and the txn
// itself when it ran more than one, as etcd does.
func (m *nodeMetrics) countTxn(t *mvcc.TxnResult) {
	var ranges, puts, deletes int
	var walk func(*mvcc.TxnResult)
	walk = func(t *mvcc.TxnResult) {
		for _, r := range t.Results {
			switch {
			case r.Range != nil:
				ranges++
			case r.Put != nil:
				puts++
			case r.Delete != nil:
				deletes++
			case r.Txn != nil:
				walk(r.Txn)
			}
		}
	}
	walk(t)
	if ranges+puts+deletes > 1 {
		m.txns.Inc()
	}
	m.ranges.Add(float64(ranges))
	m.puts.Add(float64(puts))
	m.deletes.Add(float64(deletes))
}

// ranged counts a range served from this member's state.
func (m *nodeMetrics) ranged() {
	if m != nil {
		m.ranges.Inc()
	}
}

// readTxn counts the operations of a read-only txn served here.
func (m *nodeMetrics) readTxn(t *mvcc.TxnResult) {
	if m != nil && t != nil {
		m.countTxn(t)
	}
}

// snapshotSaved records a snapshot written in full since start.
func (m *nodeMetrics) snapshotSaved(start time.Time, err error) {
	if m != nil && err == nil {
		m.snapshotSave.Observe(time.Since(start).Seconds())
	}
}

// defragmented records a Defragment that took d.
func (m *nodeMetrics) defragmented(d time.Duration) {
	if m != nil {
		m.defrag.Observe(d.Seconds())
	}
}

// timeAppends wraps the log store of st so that each durable append is
// timed (etcd_disk_wal_fsync_duration_seconds). In-memory storage, which
// syncs nothing, is left as it is: its appends would only make the
// histogram lie about a disk.
func (m *nodeMetrics) timeAppends(st *storage.Storage) raft.LogStore {
	if m == nil || !st.OnDisk() {
		return st.Logs
	}
	return &timedLogStore{LogStore: st.Logs, hist: m.walFsync}
}

// timedLogStore times the appends of the log store it wraps. raft calls it
// from its own goroutines.
type timedLogStore struct {
	raft.LogStore
	hist prometheus.Histogram
}

// IsMonotonic passes on the wrapped store's answer (see diskGuard).
func (s *timedLogStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// StoreLog implements raft.LogStore.
func (s *timedLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore; only appends that succeeded are
// timed.
func (s *timedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	err := s.LogStore.StoreLogs(logs)
	if err == nil {
		s.hist.Observe(time.Since(start).Seconds())
	}
	return err
}

// readIndexAnswered counts a follower's read-index call this member
// answered as leader: at once (readquorum.go) or after a heartbeat round.
func (m *nodeMetrics) readIndexAnswered(atOnce bool) {
	switch {
	case m == nil:
	case atOnce:
		m.readIndexAtOnce.Inc()
	default:
		m.readIndexRound.Inc()
	}
}

// corruptionChecked counts a corruption check round of kind check
// ("initial", "compact") that compared hashes, and whether they differed.
func (m *nodeMetrics) corruptionChecked(check string, mismatch bool) {
	if m == nil {
		return
	}
	m.corruptChecks.WithLabelValues(check).Inc()
	if mismatch {
		m.corruptFound.WithLabelValues(check).Inc()
	}
}
