package kvstore

import (
	"context"

	"github.com/hashicorp/raft"
)

// runLeadership follows raft's leader and state changes and publishes them.
// When this node becomes leader it first commits a barrier: only once every
// entry of earlier terms is applied here is it ready to serve linearizable
// reads (raft's commit index is not final until an entry of the new term
// commits) and reported as IsLeader. It runs until the node closes.
func (n *Node) runLeadership() {
	wake := make(chan raft.Observation, 1)
	observer := raft.NewObserver(wake, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(observer)
	defer n.raft.DeregisterObserver(observer)
	var readyTerm uint64
	for {
		// Observations only wake the loop; the state is read afresh each
		// time, so a dropped observation (the channel holds one) loses
		// nothing.
		term := n.raft.CurrentTerm()
		leading := n.raft.State() == raft.Leader
		if leading && readyTerm != term {
			n.publishLeadership(term, true, false)
			barrier := n.raft.Barrier(0)
			bindShutdown(barrier, n.closed)
			if barrier.Error() == nil && n.raft.CurrentTerm() == term {
				readyTerm = term
				n.promoteLeases()
			}
			if n.closedCtx.Err() != nil {
				return
			}
			continue
		}
		if !leading && n.fsm.deadlines().Leading() {
			n.fsm.deadlines().Demote()
		}
		n.publishLeadership(term, leading, leading && readyTerm == term)
		select {
		case <-wake:
		case <-n.closed:
			return
		}
	}
}

// promoteLeases starts the leader's lease deadlines, each at least an
// election timeout away.
func (n *Node) promoteLeases() {
	n.fsm.promoteLeases(n.cfg.hooks.now(), n.cfg.electionTimeout)
}

// publishLeadership publishes raft's leader as this node sees it; leading
// is whether raft's state was Leader. A node that has just won records
// itself as leader only after its state changes, and raft's observation of
// that is read once the barrier above commits; meanwhile the others see it
// lead already (it sends them the barrier), so it names itself: a
// MoveLeader returning once the old leader sees the new one must find the
// new one's Status naming itself.
func (n *Node) publishLeadership(term uint64, leading, ready bool) {
	addr, id := n.raft.LeaderWithID()
	if leading && id == "" {
		addr, id = n.relay.LocalAddr(), raft.ServerID(n.cfg.id)
	}
	n.lead.set(LeaderInfo{LeaderID: string(id), LeaderAddress: string(addr), Term: term, IsLeader: ready})
	n.metrics.leader(string(id))
}

// WaitLeader blocks until the cluster has a leader this node knows of, and
// returns its ID; or ctx's error, or ErrClosed.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	for {
		info, changed := n.lead.get()
		if info.LeaderID != "" {
			return info.LeaderID, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		case <-n.closed:
			return "", n.errClosed()
		}
	}
}

// ObserveLeader returns a channel that receives this node's view of the
// leadership at once and then after every change, until ctx ends or the
// node closes, when it is closed. Changes are coalesced, never queued: a
// receiver that falls behind gets the latest view next, so a host can
// block on it freely. A host service can use it as its leader election:
// act as leader while the latest value has IsLeader.
func (n *Node) ObserveLeader(ctx context.Context) <-chan LeaderInfo {
	out := make(chan LeaderInfo, 1)
	started := n.goAsync(func() {
		defer close(out)
		var last LeaderInfo
		first := true
		for {
			info, changed := n.lead.get()
			if first || info != last {
				select { // replace a value the receiver has not taken yet
				case <-out:
				default:
				}
				out <- info
				first, last = false, info
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			case <-n.closed:
				return
			}
		}
	})
	if !started {
		close(out)
	}
	return out
}
