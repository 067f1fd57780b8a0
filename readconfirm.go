package kvstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// The leader's proof for a read round: heartbeats of its own.
//
// A read round on the leader must show that no leader of a later term was
// elected before the round's readers arrived; then no write acknowledged
// before they arrived is missing from this leader's commit index (it has
// committed an entry of its own term, which IsLeader says). A leader of a
// later term needs the votes of a majority of voters, and a member enters
// a term before it votes in it. So it is enough that a majority of the
// voters of the leader's latest configuration, the leader included, were
// still in the leader's term at some moment after the readers arrived: any
// majority that elected a later leader shares a member with them, and that
// member voted after it answered. Under raft's one-server-at-a-time
// changes, a majority of the latest configuration also overlaps every
// majority of the configuration before it, the same overlap raft's own
// safety rests on (readquorum.go uses it too).
//
// After the readers joined, the round sends each other voter a bare
// heartbeat of the leader's term, raft's own message (so members of every
// version answer it, on their transport's fast path, off raft's main
// loop), and counts the answers that accept it: the follower was in the
// leader's term when it answered this very request. etcd's ReadIndex
// matches its heartbeats to the read the same way, by context. raft's
// VerifyLeader, which rounds used before, counts a follower's answer to any
// heartbeat or append that was already on its way when it was asked
// (replication.go, notifyAll): an answer sent before the readers arrived,
// delayed in the network or in a paused leader's socket buffer past an
// election and a write acknowledged elsewhere, confirmed a stale read
// (pinned by TestLeaderReadIsNotConfirmedByAnAnswerSentBeforeIt). A
// follower takes such a heartbeat as raft's: it hears from the leader of
// its term, as it would at the next heartbeat.
//
// The heartbeats go through the node's transport, not the commit relay: a
// heartbeat carrying a commit index would be served by the follower's main
// loop. Each voter has at most one of them in flight; a round that finds
// one still out counts that voter as not answering, and after a failure a
// voter is left out of rounds for readHeartbeatBackoff. So a voter that is
// down or cut off costs a round nothing but its vote, at any read rate.

// readHeartbeatBackoff is how long read rounds leave out a voter whose
// read heartbeat failed: raft's heartbeat interval at the default timing.
const readHeartbeatBackoff = 100 * time.Millisecond

// readPeer is a voter's read-heartbeat state. The map holding it is the
// read-index goroutine's alone; the fields are also written by the
// heartbeat's goroutine.
type readPeer struct {
	busy     atomic.Bool  // a read heartbeat is in flight
	retryAt  atomic.Int64 // UnixNano before which rounds leave it out
	lastFail atomic.Value // string: the latest failure, for a round's error
}

// heartbeatAnswer is one voter's answer to a read heartbeat.
type heartbeatAnswer struct {
	id   raft.ServerID
	term uint64 // the voter's term, when it answered
	ok   bool   // it accepted the heartbeat
	err  error  // the transport's failure, or why it was not sent
}

// confirmLeadership returns nil once a majority of the latest
// configuration's voters, this member included, accepted a heartbeat of
// term sent after the call began (the proof above). It fails with an
// error wrapping errLeaderNotReady, which the round's readers retry, when
// they did not, and with a *NotLeaderError when a voter is in a later
// term. It runs on the read-index goroutine only.
func (n *Node) confirmLeadership(term uint64) error {
	self := raft.ServerID(n.cfg.id)
	var others []raft.Server
	voters, votes := 0, 0
	for _, s := range n.raft.GetConfiguration().Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.ID == self {
			votes++
		} else {
			others = append(others, s)
		}
	}
	quorum := voters/2 + 1
	if votes == 0 {
		// Not a voter of its latest configuration (it is removing itself):
		// raft's own majority rule decides.
		return n.verifyLeader()
	}
	if votes >= quorum {
		return nil // the sole voter
	}

	req := &raft.AppendEntriesRequest{RPCHeader: n.readHeartbeat.RPCHeader, Term: term, Leader: n.readHeartbeat.Leader}
	answers := make(chan heartbeatAnswer, len(others)) // buffered: late answers never block
	now := time.Now().UnixNano()
	sent := 0
	var failures []string
	for _, s := range others {
		p := n.readPeers[s.ID]
		if p == nil {
			p = &readPeer{}
			n.readPeers[s.ID] = p
		}
		if now < p.retryAt.Load() {
			failures = append(failures, fmt.Sprintf("%s: %v", s.ID, p.lastFail.Load()))
			continue
		}
		if !p.busy.CompareAndSwap(false, true) {
			failures = append(failures, fmt.Sprintf("%s: its previous read heartbeat is unanswered", s.ID))
			continue
		}
		if !n.goAsync(func() { answers <- n.sendReadHeartbeat(s, p, req) }) {
			return n.errClosed()
		}
		sent++
	}
	n.forgetRemovedReadPeers(others)
	for range sent {
		a := <-answers
		switch {
		case a.ok && a.term == term:
			votes++
			if votes >= quorum {
				return nil
			}
			continue
		case a.err == nil && a.term > term:
			return n.notLeader()
		case a.err != nil:
			failures = append(failures, fmt.Sprintf("%s: %v", a.id, a.err))
		default:
			failures = append(failures, fmt.Sprintf("%s: refused in term %d", a.id, a.term))
		}
	}
	if n.closedCtx.Err() != nil {
		return n.errClosed()
	}
	return fmt.Errorf("%w: term %d confirmed by %d of the %d voters a read needs (%s)", errLeaderNotReady, term, votes, quorum, strings.Join(failures, "; "))
}

// forgetRemovedReadPeers drops the read-heartbeat state of members that
// are no longer other voters of the latest configuration, so that a
// cluster whose members come and go keeps state only for its voters. A
// heartbeat still in flight to a dropped member holds its own readPeer
// and finishes unaffected.
func (n *Node) forgetRemovedReadPeers(others []raft.Server) {
	if len(n.readPeers) <= len(others) {
		return // every entry is one of others: each round adds theirs first
	}
	for id := range n.readPeers {
		if !slices.ContainsFunc(others, func(s raft.Server) bool { return s.ID == id }) {
			delete(n.readPeers, id)
		}
	}
}

// sendReadHeartbeat sends req to the voter s and returns its answer; it
// clears p.busy, and on a failure leaves s out of rounds for a while.
func (n *Node) sendReadHeartbeat(s raft.Server, p *readPeer, req *raft.AppendEntriesRequest) heartbeatAnswer {
	defer p.busy.Store(false)
	var resp raft.AppendEntriesResponse
	if err := n.cfg.transport.AppendEntries(s.ID, s.Address, req, &resp); err != nil {
		p.lastFail.Store(err.Error())
		p.retryAt.Store(time.Now().Add(readHeartbeatBackoff).UnixNano())
		return heartbeatAnswer{id: s.ID, err: err}
	}
	return heartbeatAnswer{id: s.ID, term: resp.Term, ok: resp.Success}
}

// verifyLeader confirms leadership with raft's VerifyLeader, for a leader
// that is not a voter of its latest configuration.
func (n *Node) verifyLeader() error {
	verify := n.raft.VerifyLeader()
	n.futureFields.bind(verify, n.closed)
	if err := verify.Error(); err != nil {
		if errors.Is(err, raft.ErrRaftShutdown) {
			return n.errClosed()
		}
		return n.notLeader()
	}
	return nil
}
