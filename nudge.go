package kvstore

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Followers learn the commit index only from AppendEntries: hashicorp/raft's
// heartbeats do not carry it, and a leader with nothing new to send waits
// for its commit timeout (50–100 ms by default) before telling followers
// what has committed. A follower that forwarded a write, or asked for a read
// index, waits to apply that index, so it would wait that long.
//
// So the leader nudges: after answering a follower's call with an index, it
// appends a barrier entry (unless one was appended after that index
// committed), and the AppendEntries carrying it carries the commit index
// too. Nudges are coalesced: one barrier serves every call answered before
// it was appended. Barriers never reach the state machine.

// nudger is the leader's coalescing trigger for nudges.
type nudger struct {
	wake chan struct{} // one token: a nudge is pending
	// covered is the commit index when the latest nudge was appended:
	// followers will learn every index up to it without another one.
	covered atomic.Uint64
}

func (g *nudger) init() { g.wake = make(chan struct{}, 1) }

// nudgeFollowers makes sure followers soon learn that index committed.
func (n *Node) nudgeFollowers(index uint64) {
	if index == 0 || index <= n.nudge.covered.Load() {
		return
	}
	select {
	case n.nudge.wake <- struct{}{}:
	default: // a nudge is pending and will cover index
	}
}

// runNudges appends the coalesced barriers until the node closes.
func (n *Node) runNudges() {
	for {
		select {
		case <-n.nudge.wake:
		case <-n.closed:
			return
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		n.nudge.covered.Store(n.raft.CommitIndex())
		// Nobody waits for the barrier itself; Barrier returns once raft
		// has taken it, or at shutdown.
		n.raft.Barrier(0)
	}
}
