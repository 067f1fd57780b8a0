package kvstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/storage"
	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// Node is one member of a kvstore cluster. It is safe for concurrent use.
//
// Any member answers every call. A follower forwards a write to the
// leader and returns once it has applied the write itself; for a
// linearizable read it asks the leader for a read index and waits until
// it has applied up to it. Serializable reads are served locally.
//
// Goroutines: besides raft's, a Node runs one that follows leadership
// changes, one that batches read-index rounds, one with which the leader
// lets followers learn of new commits at once, one that expires and
// checkpoints leases while this node leads, one that samples revisions
// and auto-compacts while it leads (unless AutoCompactionOff), one or two
// that run the corruption checks (corruption.go), one that
// notices when a full disk takes writes again, one that tells the log limiter of peers
// reachable again (only with a logger), on a member restarted at a new
// address one that has the new address recorded, one per channel returned
// by ObserveLeader and KeepAlive (until its context ends), and short-lived
// ones that wait on raft for callers. Close stops them all before it
// returns.
type Node struct {
	cfg     config
	raft    *raft.Raft
	fsm     *fsm
	storage *storage.Storage
	// disk wraps the raft log store and follows whether the disk takes
	// appends (diskspace.go).
	disk *storage.DiskGuard
	// peerLogs throttles raft's repeated per-peer errors (logthrottle.go);
	// nil without a logger.
	peerLogs *peerLogLimiter

	lead  leadership
	reads readBatcher
	nudge nudger
	// relay is the transport raft sends through: it tells followers the
	// commit index in heartbeats (commitrelay.go).
	relay *commitRelay
	// eager sends a leader's new entries to its followers as its own
	// append starts (eagerappend.go).
	eager *eagerAppender

	// metrics is nil without WithMetrics (metrics.go).
	metrics *nodeMetrics
	// caughtUp is set once this node has applied what its cluster had
	// committed when it started (health.go).
	caughtUp atomic.Bool
	// hashes is this member's latest hash at its compact revision, for
	// the corruption checks (corruption.go).
	hashes hashCache
	// handingOver is set while a corrupt leader's hand-over, started by a
	// write it refused, runs (corruption.go).
	handingOver atomic.Bool

	// leaseOrder puts lease checkpoints and the clears renewals need into
	// the log in the order the Expirer produced them (lease/doc.go).
	leaseOrder sync.Mutex

	// auth bounds the bcrypt work of Node.Auth (auth.go).
	auth nodeAuth

	// readHeartbeat holds the header and leader fields of the heartbeats
	// a leader's read rounds send, as raft fills them; readPeers is each
	// voter's read-heartbeat state, the read-index goroutine's alone
	// (readconfirm.go).
	readHeartbeat raft.AppendEntriesRequest
	readPeers     map[raft.ServerID]*readPeer

	// fsmIndexCache remembers lastFSMIndex's latest answer.
	fsmIndexCache struct {
		sync.Mutex
		commit, index uint64
	}

	// removed is set, and removedCh closed, when this node learns it was
	// removed from the cluster (removal.go).
	removed    atomic.Bool
	removedCh  chan struct{}
	removeOnce sync.Once

	// futureFields finds the ShutdownCh of raft's futures, and futureWaits
	// ends the waits on them when the node stops serving (futures.go).
	futureFields shutdownFields
	futureWaits  futureWaits

	// closed is closed, and closedCtx cancelled, when Close begins.
	closed       chan struct{}
	closedCtx    context.Context
	cancelClosed context.CancelFunc

	// asyncMu guards starting goroutines against Close waiting for them.
	asyncMu  sync.Mutex
	async    sync.WaitGroup
	closing  bool
	stopOnce sync.Once
	// raftStop is the future of the Shutdown that stops raft, started once
	// by shutdownRaft (Close, or a removal) and waited for by Close.
	raftStopOnce sync.Once
	raftStop     raft.Future
	closeOnce    sync.Once
	closeErr     error
}

// KeyValue is a key's version, as etcd's mvccpb.KeyValue. Its byte slices
// must not be modified.
type KeyValue = mvcc.KeyValue

// Header is carried by every response, as etcd's ResponseHeader.
type Header struct {
	// Revision is the store revision when the response was made.
	Revision int64
	// RaftTerm is the raft term of the answering member.
	RaftTerm uint64
	// MemberID is the ID of the answering member.
	MemberID string
}

// Open starts a node whose state lives in dir (ignored with in-memory
// storage). With WithBootstrap and an empty dir it founds a new cluster;
// with existing state it rejoins as it was; with neither it waits to be
// added by a member of a running cluster ([Node.Join], or AddVoter and
// AddLearner on a member). A dir created for another cluster token or node
// ID is refused with ErrClusterMismatch, one whose node was removed from
// its cluster with ErrRemoved.
//
// A node restarted with a transport whose LocalAddr is not the address its
// cluster records for it (a TCP listener on port 0, a member moved to
// another host) starts as usual, logs "advertised address changed from X
// to Y" at warn level, and asks the leader, through any member it reaches,
// to record the new address; the leader does once it has reached the node
// there. Until then the others cannot reach it (see readvertise.go).
func Open(dir string, opts ...Option) (*Node, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	peerLogs := newPeerLogLimiter(cfg.logger)
	logger := newHCLogger(cfg.logger, peerLogs)
	st, err := openStorage(dir, &cfg, logger)
	if err != nil {
		return nil, err
	}
	disk := storage.NewDiskGuard(st, cfg.id, cfg.hooks.beforeStoreLogs, cfg.hooks.duringStoreLogs())
	st.Logs = disk
	metrics := newNodeMetrics(&cfg)
	st.Logs = metrics.timeAppends(st)
	f := newFSM(minLeaseTTL(cfg), cfg.maxTxnOps, watch.Config{ProgressInterval: cfg.watchProgressInterval})
	f.hooks = cfg.hooks
	f.observe = newApplyWatch(&cfg, metrics)
	existing, err := raft.HasExistingState(st.Logs, st.Stable, st.Snaps)
	if err != nil {
		st.Close()
		f.close()
		return nil, fmt.Errorf("kvstore: reading raft state: %w", err)
	}
	if existing {
		if err := storage.VerifyLog(st.Logs, wire.VerifyCommand); err != nil {
			st.Close()
			f.close()
			return nil, err
		}
	}
	n := &Node{cfg: cfg, fsm: f, storage: st, disk: disk, peerLogs: peerLogs, metrics: metrics, closed: make(chan struct{}), removedCh: make(chan struct{})}
	n.closedCtx, n.cancelClosed = context.WithCancel(context.Background())
	n.lead.changed = make(chan struct{})
	n.reads.init()
	n.nudge.init()
	cfg.hooks.Store.bind(n)
	// Calls from other members can arrive before raft exists (raft.NewRaft
	// restores the newest snapshot first, which takes a while): a follower
	// still forwarding to this member, which led before it restarted, is
	// answered "not the leader, leader unknown" until then. Nothing was
	// done, so the caller waits for a leader and retries.
	cfg.transport.SetHandler(n.handleRPCStarting)
	rc := cfg.raftConfig(logger.Named("raft"))
	self := cfg.transport.EncodePeer(rc.LocalID, cfg.transport.LocalAddr())
	n.readHeartbeat = raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: rc.ProtocolVersion, ID: []byte(rc.LocalID), Addr: self}, Leader: self}
	n.readPeers = make(map[raft.ServerID]*readPeer)
	snaps := storage.NewSnapshotGuard(st.Snaps, st.Logs)
	n.relay = newCommitRelay(cfg.transport, n.nudgeFollowers)
	n.eager = newEagerAppender(n.relay, st.Logs, cfg.heartbeatTimeout)
	if !cfg.noEagerAppend {
		disk.SetEarlySend(n.eager.send)
	}
	f.afterBatch = n.appliedBatch
	r, err := raft.NewRaft(rc, f, st.Logs, st.Stable, snaps, n.relay)
	if err := snaps.Started(err); err != nil {
		cfg.transport.SetHandler(nil)
		n.cancelClosed()
		st.Close()
		f.close()
		return nil, err
	}
	n.raft = r
	n.relay.start(r)
	n.eager.start(r)
	cfg.transport.SetHandler(n.handleRPC)
	n.goAsync(n.runLeadership)
	n.goAsync(n.runReadIndex)
	n.goAsync(n.runNudges)
	n.goAsync(n.runLeases)
	if cfg.autoCompaction.mode != AutoCompactionOff {
		n.goAsync(n.runAutoCompaction)
	}
	if existing {
		n.goAsync(n.runReadvertise)
	}
	n.startCorruptionChecks()
	if !cfg.attrs.empty() || existing { // existing: it may withdraw what it published before
		n.goAsync(n.runPublishAttributes)
	}
	if peerLogs != nil {
		n.goAsync(n.runPeerLogRecovery)
	}
	if !existing && len(cfg.bootstrap) > 0 {
		var servers []raft.Server
		for _, p := range cfg.bootstrap {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Close()
			return nil, fmt.Errorf("kvstore: bootstrapping: %w", err)
		}
	}
	if err := n.campaignIfSoleVoter(); err != nil {
		n.Close()
		return nil, err
	}
	// After campaignIfSoleVoter: both reload raft's timeouts.
	n.goAsync(n.runDiskWatch)
	if err := n.metrics.register(n); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// minLeaseTTL is the lease TTL floor: etcd's 1.5 election timeouts, in
// whole seconds, at least 1.
func minLeaseTTL(cfg config) int64 {
	return max(1, int64((3*cfg.electionTimeout/2+time.Second-1)/time.Second))
}

// goAsync runs f on a goroutine that Close waits for, unless the node is
// closing; it reports whether f was started.
func (n *Node) goAsync(f func()) bool {
	n.asyncMu.Lock()
	defer n.asyncMu.Unlock()
	if n.closing {
		return false
	}
	n.async.Add(1)
	go func() {
		defer n.async.Done()
		f()
	}()
	return true
}

// Close stops the node: calls in flight fail with ErrClosed (a write
// already proposed may still commit in the cluster), then raft (and with
// it the transport), storage and the store shut down. When the next Open
// would otherwise replay a long log, Close first takes a snapshot (0.6 to
// 1.7 s per million 256-byte keys on 2 cores; closesnapshot.go). It returns once
// every goroutine the node started has ended, and is safe to call more
// than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.metrics.unregister()
		n.stopServing()
		n.snapshotBeforeClose()
		err := n.shutdownRaft().Error() // waits for raft's goroutines, then closes the transport
		n.eager.close()
		n.async.Wait()
		n.closeErr = errors.Join(err, n.storage.Close(), n.fsm.close())
		n.peerLogs.flush()
	})
	return n.closeErr
}

// stopServing makes calls fail (with errClosed) and stops new node
// goroutines; Close, or a removal (removal.go), starts with it.
func (n *Node) stopServing() {
	n.stopOnce.Do(func() {
		n.asyncMu.Lock()
		n.closing = true
		n.asyncMu.Unlock()
		close(n.closed)
		n.cancelClosed()
		n.futureWaits.closeAll()
	})
}

// shutdownRaft starts raft's shutdown, once, and returns its future, whose
// Error waits for raft's goroutines and closes the transport.
func (n *Node) shutdownRaft() raft.Future {
	n.raftStopOnce.Do(func() { n.raftStop = n.raft.Shutdown() })
	return n.raftStop
}

func (n *Node) header(rev int64) Header {
	return Header{Revision: rev, RaftTerm: n.raft.CurrentTerm(), MemberID: n.cfg.id}
}

// logger returns the node's logger, which discards when none was given.
func (n *Node) logger() *slog.Logger {
	if n.cfg.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.cfg.logger
}

// ID returns the node's member ID.
func (n *Node) ID() string { return n.cfg.id }
