package kvstore

import (
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore/internal/storage"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/transport"
)

// Peer is one member of a cluster: its raft server ID and the address the
// other members dial to reach it, which is what its transport's LocalAddr
// returns (over TCP "host:port", the advertise address if one was given; on
// an in-memory Network the name it joined with).
type Peer struct {
	ID      string
	Address string
}

// config is a node's configuration, built from Options and validated once.
type config struct {
	id        string
	transport transport.Transport
	bootstrap []Peer
	logStore  LogStore
	walDir    string // WithWALDir (waldir.go): absolute, "" in the data dir
	memory    *MemoryStorage
	logger    *slog.Logger

	clusterToken string

	heartbeatTimeout   time.Duration
	electionTimeout    time.Duration
	leaderLeaseTimeout time.Duration
	commitTimeout      time.Duration

	snapshotThreshold uint64
	snapshotInterval  time.Duration
	snapshotRetain    int
	trailingLogs      uint64

	maxRequestBytes int
	maxTxnOps       int
	noEagerAppend   bool // WithEagerAppend(false) (eagerappend.go)
	noSyncRing      bool // WithSyncRing(false) (internal/storage/walsync.go)
	prewrite        bool // WithSegmentPrewrite (internal/storage/prewrite.go)

	leaseCheckpointInterval time.Duration
	watchProgressInterval   time.Duration

	// hooks are the test seams of WithTestHooks (hooks.go).
	hooks TestHooks

	metrics              prometheus.Registerer // WithMetrics (metrics.go)
	slowRequestThreshold time.Duration         // WithSlowRequestThreshold (observe.go)
	autoCompaction       autoCompaction        // WithAutoCompaction (autocompact.go)
	quotaBytes           int64                 // WithQuotaBytes (quota.go)
	corruptCheck         corruptCheckConfig    // WithCorruptCheckInterval, WithInitialCorruptCheck (corruption.go)
	attrs                memberAttrs           // WithMemberName, WithClientURLs (memberattrs.go)
	auth                 authConfig            // WithAuthTokenTTL, WithAuthBcryptCost (auth.go)
}

// Defaults. The raft timings are hashicorp/raft's; the request limits are
// etcd's.
const (
	DefaultMaxRequestBytes = 1536 * 1024 // 1.5 MiB, etcd's --max-request-bytes
	DefaultMaxTxnOps       = mvcc.DefaultMaxTxnOps
	DefaultSnapshotRetain  = 2
	// DefaultSnapshotInterval is how often raft checks whether the default
	// threshold of 8,192 new entries calls for a snapshot (raft adds up to
	// one interval of jitter). hashicorp/raft's own 120 s lets a busy
	// writer pile up millions of entries first: all of them held in memory
	// with in-memory storage, replayed at every restart from disk. Checked
	// every 10 s, snapshots follow the entry count, as etcd's do.
	DefaultSnapshotInterval = 10 * time.Second
	// DefaultLeaseCheckpointInterval is how often the leader logs the
	// remaining TTLs of leases.
	DefaultLeaseCheckpointInterval = 5 * time.Second
	// DefaultWatchProgressInterval is how often a watch WithProgressNotify
	// that received nothing gets a progress notification (etcd's default).
	DefaultWatchProgressInterval = 10 * time.Minute
	// DefaultClusterToken is the cluster token of nodes opened without
	// WithClusterToken.
	DefaultClusterToken = "kvstore"
)

func defaultConfig() config {
	rc := raft.DefaultConfig()
	return config{
		logStore:                LogStoreWAL,
		clusterToken:            DefaultClusterToken,
		heartbeatTimeout:        rc.HeartbeatTimeout,
		electionTimeout:         rc.ElectionTimeout,
		leaderLeaseTimeout:      rc.LeaderLeaseTimeout,
		commitTimeout:           rc.CommitTimeout,
		snapshotThreshold:       rc.SnapshotThreshold,
		snapshotInterval:        DefaultSnapshotInterval,
		snapshotRetain:          DefaultSnapshotRetain,
		trailingLogs:            rc.TrailingLogs,
		maxRequestBytes:         DefaultMaxRequestBytes,
		maxTxnOps:               DefaultMaxTxnOps,
		leaseCheckpointInterval: DefaultLeaseCheckpointInterval,
		watchProgressInterval:   DefaultWatchProgressInterval,
		slowRequestThreshold:    DefaultSlowRequestThreshold,
		autoCompaction:          autoCompaction{mode: DefaultAutoCompactionMode, retention: DefaultAutoCompactionRetention},
		corruptCheck:            corruptCheckConfig{interval: DefaultCorruptCheckInterval},
		prewrite:                storage.PrewriteDefault,
	}
}

// An Option configures a node at Open.
type Option func(*config) error

// WithID sets the node's raft server ID, unique in its cluster. Required.
func WithID(id string) Option {
	return func(c *config) error {
		if id == "" {
			return invalid("WithID", "empty ID")
		}
		c.id = id
		return nil
	}
}

// WithTransport sets the network the node speaks through. Required. The
// node owns it from a successful Open on and closes it at Close; if Open
// fails, closing it is left to the caller.
func WithTransport(t transport.Transport) Option {
	return func(c *config) error {
		if t == nil {
			return invalid("WithTransport", "nil transport")
		}
		c.transport = t
		return nil
	}
}

// WithBootstrap makes a node with an empty data dir found a new cluster of
// these members (itself included), like etcd's --initial-cluster. A node
// whose data dir already holds state does not bootstrap, and a restarted
// member needs no WithBootstrap at all.
//
// Open checks the peers whether or not it bootstraps, before it touches the
// data dir: every ID non-empty and distinct, every address distinct and
// well formed for the transport (see transport.AddressValidator; over TCP
// "host:port" with a port from 1 to 65535), and this node listed at exactly
// its transport's LocalAddr, the address the others will dial. A bad
// address fails with an error matching both ErrInvalidOption and
// ErrInvalidAddress that names the peer and says what is wrong; a
// mismatched own address with ErrInvalidOption, naming both addresses.
func WithBootstrap(peers ...Peer) Option {
	return func(c *config) error {
		if len(peers) == 0 {
			return invalid("WithBootstrap", "no peers")
		}
		ids, addrs := map[string]bool{}, map[string]bool{}
		for _, p := range peers {
			switch {
			case p.ID == "":
				return invalid("WithBootstrap", "peer %+v has no ID", p)
			case ids[p.ID]:
				return invalid("WithBootstrap", "duplicate ID %q", p.ID)
			case p.Address != "" && addrs[p.Address]:
				return invalid("WithBootstrap", "duplicate address %q", p.Address)
			}
			ids[p.ID], addrs[p.Address] = true, true
		}
		c.bootstrap = append([]Peer(nil), peers...)
		return nil
	}
}

// WithLogStore chooses the raft log store of the node's data dir:
// LogStoreWAL (default) or LogStoreBolt. A data dir keeps the kind it was
// created with (ErrLogStoreMismatch).
func WithLogStore(kind LogStore) Option {
	return func(c *config) error {
		if kind < LogStoreWAL || kind > LogStoreBolt {
			return invalid("WithLogStore", "unknown log store %v", kind)
		}
		c.logStore = kind
		return nil
	}
}

// WithMemoryStorage keeps the node's state in m instead of a data dir (the
// dir argument of Open is ignored), for tests and demos. The state outlives
// the node: opening a node again with m restarts it where it stopped, as
// from a data dir. WithMemoryStorage(NewMemoryStorage()) gives a node whose
// state goes with it.
func WithMemoryStorage(m *MemoryStorage) Option {
	return func(c *config) error {
		if m == nil {
			return invalid("WithMemoryStorage", "nil storage")
		}
		c.memory = m
		return nil
	}
}

// WithClusterToken names the cluster, like etcd's --initial-cluster-token:
// a data dir remembers the token it was created with and refuses to open
// under another, and members refuse forwarded requests from another
// cluster. Give each cluster its own. The default is DefaultClusterToken.
func WithClusterToken(token string) Option {
	return func(c *config) error {
		if token == "" {
			return invalid("WithClusterToken", "empty token")
		}
		c.clusterToken = token
		return nil
	}
}

// WithLogger sends the node's logs, raft's included, to l. Nil (the default)
// discards them.
//
// raft's records keep their level, with a "component" attribute ("raft"),
// except that the steps of an election (raft's "heartbeat timeout reached,
// starting election", a split vote, a vote refused to a candidate whose log
// is behind, a leader stepping down for a newer one) come out at INFO, like
// raft's state changes ("entering leader state"): a healthy cluster logs
// nothing at WARN or above, at start or after.
//
// Warnings and errors that name a peer ("failed to heartbeat to",
// "failed to appendEntries to", "failed to contact", ...) are rate-limited
// per message and peer: the first is logged, then at most one every 30
// seconds, which carries "suppressed" (the repeats not logged since the
// previous line) and "interval" (the time they span). When the leader's
// heartbeats reach the peer again, the repeats still pending are logged
// and an INFO "peer reachable again" line carries "unreachable-for"; Close
// logs any still pending. l must be safe for concurrent use, as every
// slog.Logger is.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// WithRaftTiming sets raft's heartbeat and election timeouts (followers
// start an election after missing heartbeats for this long), the leader
// lease and the commit timeout. Zero keeps a value's default.
func WithRaftTiming(heartbeat, election, leaderLease, commit time.Duration) Option {
	return func(c *config) error {
		for name, d := range map[string]time.Duration{"heartbeat": heartbeat, "election": election, "leader lease": leaderLease, "commit": commit} {
			if d < 0 {
				return invalid("WithRaftTiming", "negative %s timeout %v", name, d)
			}
		}
		if heartbeat > 0 {
			c.heartbeatTimeout = heartbeat
		}
		if election > 0 {
			c.electionTimeout = election
		}
		if leaderLease > 0 {
			c.leaderLeaseTimeout = leaderLease
		}
		if commit > 0 {
			c.commitTimeout = commit
		}
		return nil
	}
}

// WithSnapshots sets when raft snapshots are taken (after threshold new log
// entries, checked every interval) and how many are kept on disk.
func WithSnapshots(threshold uint64, interval time.Duration, retain int) Option {
	return func(c *config) error {
		switch {
		case threshold == 0:
			return invalid("WithSnapshots", "zero threshold")
		case interval <= 0:
			return invalid("WithSnapshots", "interval %v", interval)
		case retain < 1:
			return invalid("WithSnapshots", "retain %d, need at least 1", retain)
		}
		c.snapshotThreshold, c.snapshotInterval, c.snapshotRetain = threshold, interval, retain
		return nil
	}
}

// WithTrailingLogs sets how many log entries are kept after a snapshot, so
// that a slightly lagging follower catches up from the log rather than a
// snapshot.
func WithTrailingLogs(n uint64) Option {
	return func(c *config) error {
		c.trailingLogs = n
		return nil
	}
}

// WithEagerAppend sets whether a leader sends its new log entries to its
// followers while it writes them to its own log (default true): a write
// then waits for the slower of the leader's and a follower's disk writes
// rather than for both in turn, at the price of each entry crossing the
// network twice to each follower (eagerappend.go). Members may differ;
// turning it off suits links where bandwidth is dearer than latency.
func WithEagerAppend(enabled bool) Option {
	return func(c *config) error {
		c.noEagerAppend = !enabled
		return nil
	}
}

// WithSyncRing sets whether the raft-wal log of a data dir may flush
// through io_uring on Linux (default true). Under concurrent writes a
// flush through the ring leaves the flushing goroutine's Go processor to
// other goroutines, where fsync(2) holds it: with 64 writers on 2 cores,
// a quarter to a third more puts per second through etcd's API (1.4x in
// process; BENCHMARKS.md). A lone writer's flushes stay
// fsync(2), which wakes sooner. Every flush is a full fsync either way;
// only who waits changes. Where the kernel refuses io_uring (a seccomp
// filter, kernel.io_uring_disabled, not Linux) every flush is fsync(2).
func WithSyncRing(enabled bool) Option {
	return func(c *config) error {
		c.noSyncRing = !enabled
		return nil
	}
}

// WithSegmentPrewrite sets whether zeros are written, in the background,
// into the space raft-wal preallocated for its segment files, a little
// ahead of the log's end (default true on Linux, false elsewhere). It runs
// only where the raft log's folder is on ext4 or XFS; on other file
// systems the option changes nothing.
// Preallocated space is unwritten to ext4 and XFS: the first append into
// each new block changes the file's extent map, which its flush must then
// commit to the file system's journal. Over blocks already written, a
// flush writes the data alone: appends of 6 KB took 0.6x the time on this
// project's benchmark machine, and puts from 64 writers to three members
// in one process gained about a tenth (BENCHMARKS.md, "Appends over
// written blocks"). It writes each segment's bytes twice (zeros, then the
// log) and changes no byte the log depends on. Copy-on-write file
// systems (Btrfs, ZFS) are left alone: there an overwrite allocates anew,
// which prewriting would cause rather than save.
func WithSegmentPrewrite(enabled bool) Option {
	return func(c *config) error {
		c.prewrite = enabled
		return nil
	}
}

// WithMaxRequestBytes limits the encoded size of one write request
// (default 1.5 MiB, as etcd).
func WithMaxRequestBytes(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return invalid("WithMaxRequestBytes", "%d", n)
		}
		c.maxRequestBytes = n
		return nil
	}
}

// WithMaxTxnOps limits each list of a txn (default 128, as etcd). Every
// member of a cluster must use the same value.
func WithMaxTxnOps(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return invalid("WithMaxTxnOps", "%d", n)
		}
		c.maxTxnOps = n
		return nil
	}
}

// WithLeaseCheckpointInterval sets how often the leader logs the remaining
// TTLs of leases (default 5s). After a leader change a lease's remaining
// TTL is right to within this interval; etcd without checkpoints resets it
// to the full TTL.
func WithLeaseCheckpointInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("WithLeaseCheckpointInterval", "%v", d)
		}
		c.leaseCheckpointInterval = d
		return nil
	}
}

// WithWatchProgressInterval sets how often a watch WithProgressNotify that
// received nothing meanwhile gets a progress notification (default 10
// minutes, as etcd).
func WithWatchProgressInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("WithWatchProgressInterval", "%v", d)
		}
		c.watchProgressInterval = d
		return nil
	}
}

// buildConfig applies opts to the defaults and checks what no single option
// can check alone.
func buildConfig(opts []Option) (config, error) {
	c := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			return config{}, invalid("Open", "nil option")
		}
		if err := opt(&c); err != nil {
			return config{}, err
		}
	}
	switch {
	case c.id == "":
		return config{}, invalid("WithID", "a node ID is required")
	case c.transport == nil:
		return config{}, invalid("WithTransport", "a transport is required")
	case c.heartbeatTimeout < 5*time.Millisecond:
		return config{}, invalid("WithRaftTiming", "heartbeat timeout %v is below raft's 5ms minimum", c.heartbeatTimeout)
	case c.electionTimeout < c.heartbeatTimeout:
		return config{}, invalid("WithRaftTiming", "election timeout %v is below the heartbeat timeout %v", c.electionTimeout, c.heartbeatTimeout)
	case c.leaderLeaseTimeout > c.heartbeatTimeout:
		return config{}, invalid("WithRaftTiming", "leader lease %v exceeds the heartbeat timeout %v", c.leaderLeaseTimeout, c.heartbeatTimeout)
	}
	if err := c.checkBootstrap(); err != nil {
		return config{}, err
	}
	return c, nil
}

// raftConfig is the hashicorp/raft configuration for c, logging to logger.
func (c *config) raftConfig(logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.id)
	rc.HeartbeatTimeout = c.heartbeatTimeout
	rc.ElectionTimeout = c.electionTimeout
	rc.LeaderLeaseTimeout = c.leaderLeaseTimeout
	rc.CommitTimeout = c.commitTimeout
	rc.SnapshotThreshold = c.snapshotThreshold
	rc.SnapshotInterval = c.snapshotInterval
	rc.TrailingLogs = c.trailingLogs
	rc.Logger = logger
	// A buffered apply channel (MaxAppendEntries deep): writers queue their
	// entries while the leader's loop is storing the previous batch, and it
	// takes them all as its next batch, instead of one writer handing over
	// per loop turn (BENCHMARKS.md, Writes: put-64 won 8 of 10 A/B pairs).
	// An entry still queued when leadership moves is answered ErrNotLeader,
	// never appended, as before.
	rc.BatchApplyCh = true
	// A leader that commits its own removal steps down instead of shutting
	// raft down there and then. That shutdown stops raft's FSM goroutine
	// too, which may drop the entries queued for it, the removal's among
	// them, leaving its future unanswered (hashicorp/raft#498): the call
	// hung until its deadline and the old leader was never marked removed
	// (robustness seed 9). As a follower outside the configuration it
	// stands for no election; the FSM applies the removal, the future
	// answers, and the node shuts raft down itself (removal.go), so that
	// Close waits for raft's goroutines.
	rc.ShutdownOnRemove = false
	return rc
}
