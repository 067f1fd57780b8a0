package kvstore

import (
	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
)

// A follower's read-index call, counted as its acknowledgement of the
// leader.
//
// The leader's read round (its own heartbeats, readconfirm.go) proves that
// a majority of voters were still in the leader's term after the round's
// readers arrived. No leader of a later term can have been elected before
// then, since its election needed a vote from one of them and a member
// enters a term before it votes in it; so no write acknowledged before the
// readers arrived can be missing from the leader's commit index.
//
// A follower's call for a read index carries the same proof for its own
// readers: the raft term it was in after they joined their round. If that
// is the leader's term, the follower had voted in no later term while they
// waited; neither had the leader, whose term is still that one when it
// answers. When the leader's latest configuration has two or three voters
// and both are among them, the two are a majority, and so is every
// configuration one change away (raft changes one server at a time), the
// same overlap raft's own safety rests on. No leader of a later term was
// elected before the readers arrived, so none committed anything; what this
// term or an earlier one committed is in the leader's commit index once it
// has committed an entry of its own term, which IsLeader says it has. The
// leader then answers with its commit index at once, as it would after a
// heartbeat round, and the follower waits to apply it as before. Writes the
// answer misses were acknowledged after the readers arrived, by a leader
// of a later term elected after that: they come after everything in the
// answer in the log, and the reads may come before them.
//
// Anything else joins a heartbeat round as before: a call in a cluster of
// four or more voters (the two are no majority), from a non-voter, in
// another term, without a term (a member of an earlier version), or while
// the leader is not ready or no longer leads.
//
// A follower's linearizable read thus costs one round trip to the leader
// instead of two (the call, then the leader's heartbeats). etcd's raft, in
// its default ReadOnlySafe mode, runs the heartbeat round for a follower's
// ReadIndex too.

// readIndexConfirmedByAsker returns the index a follower's read-index call
// req can be answered with without a heartbeat round, and whether it can
// (the conditions above). It runs on the transport's goroutine for the
// call, concurrently with raft, and never waits on raft: it reads raft's
// atomics, the published leadership and, through lastFSMIndex, the log.
func (n *Node) readIndexConfirmedByAsker(req *wire.Request) (uint64, bool) {
	if req.Term == 0 {
		return 0, false
	}
	if info, _ := n.lead.get(); !info.IsLeader || info.Term != req.Term {
		return 0, false
	}
	if !askerCompletesMajority(n.raft.GetConfiguration().Configuration(), raft.ServerID(n.cfg.id), raft.ServerID(req.From)) {
		return 0, false
	}
	// The term before and after: raft was in req.Term throughout, as
	// leader when the state was read, so the commit index read between is
	// this term's leader's.
	if n.raft.CurrentTerm() != req.Term || n.raft.State() != raft.Leader {
		return 0, false
	}
	commit := n.raft.CommitIndex()
	if n.raft.CurrentTerm() != req.Term {
		return 0, false
	}
	return n.lastFSMIndex(commit), true
}

// askerCompletesMajority reports whether leader and asker, both voters of
// cfg, are a majority of its voters: cfg has two or three voters.
func askerCompletesMajority(cfg raft.Configuration, leader, asker raft.ServerID) bool {
	voters, leaderVotes, askerVotes := 0, false, false
	for _, s := range cfg.Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		leaderVotes = leaderVotes || s.ID == leader
		askerVotes = askerVotes || s.ID == asker
	}
	return leaderVotes && askerVotes && leader != asker && 2 >= voters/2+1
}
