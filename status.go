package kvstore

import (
	"errors"

	"github.com/kvstore/kvstore/mvcc"
)

// Status is a snapshot of a node's state, as etcd's maintenance Status.
type Status struct {
	ID       string
	LeaderID string
	// IsLeader is true when this node leads and is ready (LeaderInfo).
	IsLeader bool
	// RaftState is raft's role for this node: Follower, Candidate, Leader
	// or Shutdown.
	RaftState string
	RaftTerm  uint64
	// CommitIndex is the raft index this node knows to be committed;
	// AppliedIndex the index its state machine has applied.
	CommitIndex  uint64
	AppliedIndex uint64
	// Revision and CompactRevision are the store's.
	Revision        int64
	CompactRevision int64
	// Keys is the number of live keys: keys that exist at Revision. A
	// deleted key is not counted, even while its history is held until a
	// compaction (etcd's etcd_mvcc_keys_total counts the same way).
	// StoreSize is the store's approximate size in bytes, history
	// included: the figure the quota bounds (quota.go says how it is
	// counted). It is also the size in use (etcd's DbSizeInUse): the
	// store is in memory, so what compaction frees is not kept as free
	// pages.
	Keys      int
	StoreSize int64
	// QuotaBytes is this member's quota (WithQuotaBytes), -1 when off.
	QuotaBytes int64
	// Alarms are the active alarms this member has applied.
	Alarms []Alarm
}

// Status reports this node's state without asking other members.
func (n *Node) Status() Status {
	info, _ := n.lead.get()
	store := n.fsm.status()
	return Status{
		ID:              n.cfg.id,
		LeaderID:        info.LeaderID,
		IsLeader:        info.IsLeader,
		RaftState:       n.raft.State().String(),
		RaftTerm:        n.raft.CurrentTerm(),
		CommitIndex:     n.raft.CommitIndex(),
		AppliedIndex:    n.fsm.appliedIndex(),
		Revision:        store.Revision,
		CompactRevision: store.CompactRevision,
		Keys:            store.Keys,
		StoreSize:       store.Size,
		QuotaBytes:      n.cfg.quota(),
		Alarms:          n.fsm.activeAlarms(),
	}
}

// HashKVResponse answers HashKV.
type HashKVResponse struct {
	Header Header
	// Hash covers every key version kept at or below the revision asked
	// for; members that applied the same log agree on it.
	Hash uint32
	// CompactRevision is the store's compact revision.
	CompactRevision int64
}

// HashKV hashes this node's store at revision rev (0 for the current one),
// like etcd's HashKV, to check that members agree. It reads local state
// only. Compacted or future revisions are ErrCompacted / ErrFutureRevision.
func (n *Node) HashKV(rev int64) (*HashKVResponse, error) {
	if rev == 0 {
		rev = n.fsm.revision()
	}
	h, err := n.fsm.hash(rev)
	if err != nil {
		if errors.Is(err, mvcc.ErrClosed) {
			return nil, n.errClosed()
		}
		return nil, err
	}
	return &HashKVResponse{Header: n.header(n.fsm.revision()), Hash: h, CompactRevision: n.fsm.compactRevision()}, nil
}
