package kvstore

import "sync"

// This node's view of who leads, as the leadership goroutine
// (leadership.go) publishes it, and what reads it: Leader, IsLeader and the
// NotLeaderError of a request that needs the leader.

// LeaderInfo is a node's view of its cluster's leadership.
type LeaderInfo struct {
	// LeaderID and LeaderAddress name the leader, empty when unknown
	// (during an election, or while this node is cut off).
	LeaderID      string
	LeaderAddress string
	// Term is the raft term of this view.
	Term uint64
	// IsLeader reports that this node leads in Term and has applied every
	// entry committed before its term began: its state is the cluster's
	// latest, so a host may act as the leader of its own service.
	IsLeader bool
}

// leadership holds the node's current LeaderInfo and wakes those waiting
// for it to change. The leadership goroutine is its only writer.
type leadership struct {
	mu      sync.Mutex
	info    LeaderInfo
	changed chan struct{} // closed and replaced on every change
}

func (l *leadership) get() (LeaderInfo, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info, l.changed
}

func (l *leadership) set(info LeaderInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if info != l.info {
		l.info = info
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// Leader returns the current leader's ID and address, empty if unknown.
func (n *Node) Leader() (id, address string) {
	info, _ := n.lead.get()
	return info.LeaderID, info.LeaderAddress
}

// IsLeader reports whether this node is the leader and ready: it has
// applied every entry committed before its term (see [LeaderInfo]).
func (n *Node) IsLeader() bool {
	info, _ := n.lead.get()
	return info.IsLeader
}

// notLeader is the *NotLeaderError for a request this node cannot serve
// because it does not lead, naming the leader when it knows one.
func (n *Node) notLeader() error {
	id, addr := n.Leader()
	if id == n.cfg.id {
		id, addr = "", ""
	}
	return &NotLeaderError{LeaderID: id, LeaderAddress: addr}
}
