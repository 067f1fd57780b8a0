package kvstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/mvcc"
)

// Node is one member of a kvstore cluster. It is safe for concurrent use.
//
// Today a Node serves writes and linearizable reads on the leader (other
// members answer them with a *NotLeaderError) and serializable reads
// anywhere; forwarding from followers, Txn, Watch and Lease calls are
// being added.
type Node struct {
	cfg     config
	raft    *raft.Raft
	fsm     *fsm
	storage *storage

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
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
// with existing state it rejoins as it was.
func Open(dir string, opts ...Option) (*Node, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	logger := newHCLogger(cfg.logger)
	st, err := openStorage(dir, cfg.logStore, cfg.snapshotRetain, logger)
	if err != nil {
		return nil, err
	}
	f := newFSM(minLeaseTTL(cfg), cfg.maxTxnOps)
	rc := cfg.raftConfig()
	rc.BatchApplyCh = true
	existing, err := raft.HasExistingState(st.logs, st.stable, st.snaps)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("kvstore: reading raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, f, st.logs, st.stable, st.snaps, cfg.transport)
	if err != nil {
		st.close()
		f.kv.Close()
		return nil, fmt.Errorf("kvstore: starting raft: %w", err)
	}
	n := &Node{cfg: cfg, raft: r, fsm: f, storage: st, closed: make(chan struct{})}
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
	return n, nil
}

// minLeaseTTL is the lease TTL floor: etcd's 1.5 election timeouts, in
// whole seconds, at least 1.
func minLeaseTTL(cfg config) int64 {
	return max(1, int64((3*cfg.electionTimeout/2+time.Second-1)/time.Second))
}

// Close stops the node: raft (and with it the transport), storage, and
// the store. It waits for every goroutine the node started and is safe to
// call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closed)
		err := n.raft.Shutdown().Error()
		n.closeErr = errors.Join(err, n.storage.close(), n.fsm.kv.Close())
	})
	return n.closeErr
}

func (n *Node) header(rev int64) Header {
	return Header{Revision: rev, RaftTerm: n.raft.CurrentTerm(), MemberID: n.cfg.id}
}

// Leader returns the current leader's ID and address, empty if unknown.
func (n *Node) Leader() (id, address string) {
	addr, lid := n.raft.LeaderWithID()
	return string(lid), string(addr)
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// WaitLeader blocks until the cluster has a leader that this node knows of,
// and returns its ID, or ctx's error.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	for {
		if id, _ := n.Leader(); id != "" {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-n.closed:
			return "", ErrClosed
		case <-time.After(n.cfg.heartbeatTimeout / 10):
		}
	}
}

func (n *Node) notLeader() error {
	id, addr := n.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAddress: addr}
}

// propose commits c through raft on the leader and returns its result. The
// context bounds the wait; a write already proposed when ctx ends may still
// commit.
func (n *Node) propose(ctx context.Context, c *command) (*applyResult, error) {
	select {
	case <-n.closed:
		return nil, ErrClosed
	default:
	}
	data, err := encodeCommand(c)
	if err != nil {
		return nil, err
	}
	if len(data) > n.cfg.maxRequestBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRequestTooLarge, len(data), n.cfg.maxRequestBytes)
	}
	if !n.IsLeader() {
		return nil, n.notLeader()
	}
	timeout := time.Duration(0)
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	future := n.raft.Apply(data, timeout)
	done := make(chan error, 1)
	go func() { done <- future.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (the write may still commit)", ctx.Err())
	}
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader):
		return nil, n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return nil, ErrOutcomeUnknown
	case errors.Is(err, raft.ErrRaftShutdown):
		return nil, ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return nil, context.DeadlineExceeded
	default:
		return nil, err
	}
	res, ok := future.Response().(*applyResult)
	if !ok {
		return nil, fmt.Errorf("kvstore: unexpected apply response %T", future.Response())
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res, nil
}

// readIndex makes the next local read linearizable: it confirms this node
// still leads, takes the commit index and waits until it is applied.
func (n *Node) readIndex(ctx context.Context) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	verify := n.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- verify.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return n.notLeader()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return n.fsm.applied.wait(ctx, n.lastFSMIndex(n.raft.CommitIndex()))
}

// lastFSMIndex returns the index of the last entry at or below commit that
// raft hands to the state machine. raft never passes no-op entries (one
// starts every term) or barriers to the FSM, so waiting for the commit index
// itself could wait forever. An entry no longer in the log is covered by a
// snapshot the state machine already holds: nothing to wait for.
func (n *Node) lastFSMIndex(commit uint64) uint64 {
	for i := commit; i > 0; i-- {
		var l raft.Log
		if err := n.storage.logs.GetLog(i, &l); err != nil {
			return 0
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return 0
}
