package kvstore

import (
	"github.com/hashicorp/raft"
)

// The leader nudges followers when they could learn a commit index they do
// not know (the commit relay's reasons, commitrelay.go): after it applied
// entries, after it answered a follower's call with an index (a forwarded
// write, a read index, a membership change), and when a follower's answer
// shows it holds entries committed since it was last told. A nudge is a
// VerifyLeader: raft heartbeats every follower at once, and the relay
// writes into each heartbeat the commit index that follower can use. No
// log entry is appended and no disk is touched.
//
// Nudges are coalesced: one pending and one in flight at most, and none
// when every follower already knows what it can be told. A follower learns
// of a commit one heartbeat round trip after the leader applied it, instead
// of at the next write or the commit timeout.

// nudger is the leader's coalescing trigger for nudges.
type nudger struct {
	wake chan struct{} // one token: a nudge is pending
}

func (g *nudger) init() { g.wake = make(chan struct{}, 1) }

// nudgeFollowers makes sure followers soon learn the commit index. It never
// blocks, and is called from raft's goroutines and the apply goroutine.
func (n *Node) nudgeFollowers() {
	select {
	case n.nudge.wake <- struct{}{}:
	default: // a nudge is pending and will cover this one
	}
}

// appliedBatch is the FSM's report that it applied entries up to index.
func (n *Node) appliedBatch(uint64) {
	if n.IsLeader() {
		n.nudgeFollowers()
	}
}

// runNudges sends the coalesced nudges until the node closes.
func (n *Node) runNudges() {
	for {
		select {
		case <-n.nudge.wake:
		case <-n.closed:
			return
		}
		if n.raft.State() != raft.Leader || !n.relay.anyBehind() {
			continue
		}
		// The heartbeats go out at once; waiting for their quorum keeps one
		// nudge in flight. An error (leadership lost, shutdown) needs
		// nothing done: a new leader tells followers itself.
		verify := n.raft.VerifyLeader()
		n.futureFields.bind(verify, n.closed)
		_ = verify.Error()
	}
}
