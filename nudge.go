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
// when every follower already knows what it can be told, or while entries
// are in flight (their AppendEntries carry the commit index, and the nudge
// after they apply covers the rest). A follower learns of a commit one
// heartbeat round trip after the leader applied it, instead of at the next
// write or the commit timeout. etcd's leader does the same on every commit
// (an empty append when nothing else is to be sent). Entries that never
// reach the state machine (a new leader's barrier) trigger no nudge of
// their own; followers learn them with the next write or at the commit
// timeout, as before, and nothing waits on them.

// nudger is the leader's coalescing trigger for nudges.
type nudger struct {
	wake chan struct{} // one token: a nudge is pending
}

func (g *nudger) init() { g.wake = make(chan struct{}, 1) }

// nudgeFollowers makes sure followers soon learn the commit index. It never
// blocks, and is called from raft's goroutines and the apply goroutine.
func (n *Node) nudgeFollowers() {
	if !n.relay.anyBehind() {
		return // the common case after a read round: nothing to tell
	}
	select {
	case n.nudge.wake <- struct{}{}:
	default: // a nudge is pending and will cover this one
	}
}

// appliedBatch is the FSM's report that it applied a batch of entries.
func (n *Node) appliedBatch() {
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
		if n.raft.LastIndex() > n.raft.CommitIndex() {
			// Entries are in flight: the AppendEntries that carry them, or
			// the nudge after they apply, tell followers this commit. Under
			// load that spares a heartbeat round per batch.
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
