package kvstore

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// A hashicorp/raft follower learns that entries committed only from the
// LeaderCommitIndex of an AppendEntries request, and its leader sends one
// only with new entries or, when none come, after its commit timeout
// (50–100 ms by default): heartbeats carry no commit index, so that raft's
// transports can answer them without waiting for the follower's disk. A
// follower that forwarded a write, answers a linearizable read at a read
// index, or serves watches, would wait that long to apply what already
// committed. etcd's raft leader sends the new commit index as soon as it
// advances.
//
// The commit relay sits between raft and the node's transport on the
// leader's side and writes into a heartbeat the commit index its follower
// can use. The nudger (nudge.go) makes raft heartbeat at once when a
// follower could learn something (VerifyLeader: no log entry, no fsync).
//
// Safety. A follower applies min(LeaderCommitIndex, its last index) without
// the log matching check an AppendEntries with entries gets (a heartbeat
// names no previous entry), so the relay must only tell it an index c such
// that its log holds the committed entries up to c. The relay learns match,
// the index up to which the follower's log equals the leader's, from the
// follower's successful answers to AppendEntries requests of the leader's
// term T that named a previous entry or carried entries. Within T only this
// leader writes to the follower's log, and never against its own log, so the
// follower's log up to match stays equal to the leader's log of term T. It
// sends c = min(commit, match) where commit is raft's commit index read
// while this node's term is still T (the term is read after it): every
// entry up to commit in this node's log is committed and was in its log of
// term T, so the follower's entries up to c are the committed ones. A
// heartbeat of term T reaching a follower already in a later term is
// refused before its commit index is looked at; one of a term whose match
// the relay has not learnt carries nothing.
type commitRelay struct {
	transport.Transport

	// behind is called, with no lock held, when a follower's answer shows it
	// could be told a higher commit index than it knows; it must not block.
	behind func()

	mu    sync.Mutex
	src   commitSource // nil until raft exists
	peers map[raft.ServerID]*relayedPeer
	// routes is how raft last addressed each peer: the eager appender
	// (eagerappend.go) sends its requests the same way.
	routes map[raft.ServerID]*relayRoute
	// flights holds the eager request in flight to each follower, if any.
	flights map[raft.ServerID]*eagerFlight
	// replicating counts raft's own requests with entries on the wire to
	// each follower: the eager appender leaves a follower raft is already
	// streaming to alone.
	replicating map[raft.ServerID]int
}

// relayRoute is where and as whom raft sent its latest AppendEntries
// request to a peer, and when.
type relayRoute struct {
	term   uint64
	target raft.ServerAddress
	header raft.RPCHeader
	leader []byte // the deprecated Leader field, as raft fills it
	at     time.Time
}

// commitSource is what the relay reads of raft (*raft.Raft satisfies it).
type commitSource interface {
	CommitIndex() uint64
	CurrentTerm() uint64
}

// relayedPeer is what the leader knows of one follower, in one term.
type relayedPeer struct {
	term  uint64 // the leader term match and told were learnt in
	match uint64 // the follower's log equals the leader's up to here
	told  uint64 // the follower's commit index is at least this
	// failing is set by a failed RPC and cleared by an answer: a nudge
	// for a follower that is down or cut off would only wake raft for
	// nothing (raft's heartbeat to it is in its backoff anyway).
	failing bool
	// held is how far the follower is known to hold the leader's log for
	// answering raft's requests in its place (held): learnt from eager
	// answers only, and dropped at any failed or refused RPC, which is how
	// a follower that lost its log (a member removed, wiped and added back
	// under the same ID, within one term) first shows. resets counts the
	// drops, so that an eager answer racing one is not learnt after it.
	held, resets uint64
}

func newCommitRelay(t transport.Transport, behind func()) *commitRelay {
	return &commitRelay{Transport: t, behind: behind, peers: make(map[raft.ServerID]*relayedPeer), routes: make(map[raft.ServerID]*relayRoute), flights: make(map[raft.ServerID]*eagerFlight), replicating: make(map[raft.ServerID]int)}
}

// start gives the relay raft's commit index and term; heartbeats carry
// nothing before.
func (r *commitRelay) start(src commitSource) {
	r.mu.Lock()
	r.src = src
	r.mu.Unlock()
}

// AppendEntries implements raft.Transport: it passes the request on, with
// the usable commit index written into a copy of a bare heartbeat, and
// learns from the answer.
func (r *commitRelay) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := args
	if isBareHeartbeat(args) {
		if c := r.usableCommit(id, args.Term, target, args); c > 0 {
			hb := *args // raft reuses its heartbeat request: never write into it
			hb.LeaderCommitIndex = c
			sent = &hb
		}
	} else {
		r.route(id, target, args)
		last, held, flight := r.held(id, args)
		if !held && flight != nil {
			// The eager request carrying these entries is on its way: its
			// answer comes sooner than this request's would, which the
			// follower would take only after it.
			<-flight
			last, held, _ = r.held(id, args)
		}
		if held {
			// The follower already stored these entries: answer as it would.
			*resp = raft.AppendEntriesResponse{Term: args.Term, LastLog: last, Success: true}
			return nil
		}
		if len(args.Entries) > 0 {
			r.mu.Lock()
			r.replicating[id]++
			r.mu.Unlock()
			defer func() {
				r.mu.Lock()
				if r.replicating[id]--; r.replicating[id] == 0 {
					delete(r.replicating, id)
				}
				r.mu.Unlock()
			}()
		}
	}
	return r.send(id, target, sent, resp)
}

// held reports whether follower id is known to hold every entry of req, a
// request with entries of the relay's current term, and the last one's
// index; if not, but an eager request carrying them is in flight to the
// follower, it returns that flight's done channel. It is how raft's own
// request for entries the eager appender (eagerappend.go) sent gets its
// answer without a second round trip, and without waiting behind the
// follower's next disk write.
//
// Safety. held, like the relay's match (see commitRelay), says the
// follower's log equals the leader's log of term T up to it, learnt from
// the follower's success answers to eager requests of T, and forgotten at
// any failed or refused RPC since; raft's request of term T carries
// entries of that same log. A follower would answer it with success (or,
// if it has meanwhile moved to a later term, with that term, which raft
// learns from its next heartbeat instead). Raft counts the follower's
// match from the answer, exactly what the eager answer already showed. The
// request's commit index does not reach the follower this way; it learns
// it from the next eager request or the relay's heartbeats. Raft's own
// requests without entries (the commit timeout's, probes) always go out.
func (r *commitRelay) held(id raft.ServerID, req *raft.AppendEntriesRequest) (last uint64, held bool, flight <-chan struct{}) {
	n := len(req.Entries)
	if n == 0 {
		return 0, false, nil
	}
	last = req.Entries[n-1].Index
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src == nil || r.src.CurrentTerm() != req.Term {
		return 0, false, nil
	}
	if p := r.peers[id]; p != nil && p.term == req.Term && !p.failing && p.held >= last {
		return last, true, nil
	}
	if f := r.flights[id]; f != nil && f.term == req.Term && f.last >= last {
		return 0, false, f.done
	}
	return 0, false, nil
}

// appendEagerly sends the eager appender's request (eagerappend.go) and
// learns from its answer as from raft's own, and how far the follower
// holds the log (held). While it is in flight, raft's own request for
// entries it carries waits for its answer.
func (r *commitRelay) appendEagerly(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	n := len(req.Entries)
	if n == 0 {
		return r.send(id, target, req, resp)
	}
	last := req.Entries[n-1].Index
	f := &eagerFlight{term: req.Term, last: last, done: make(chan struct{})}
	r.mu.Lock()
	r.flights[id] = f
	var resets uint64
	if p := r.peers[id]; p != nil {
		resets = p.resets
	}
	r.mu.Unlock()
	err := r.send(id, target, req, resp)
	r.mu.Lock()
	if r.flights[id] == f {
		delete(r.flights, id)
	}
	// Learnt before the waiters look.
	if p := r.peers[id]; err == nil && resp.Success && resp.Term == req.Term && p != nil && p.term == req.Term && p.resets == resets {
		p.held = max(p.held, last)
	}
	r.mu.Unlock()
	close(f.done)
	return err
}

// eagerFlight is an eager request in flight to a follower: the term and
// the index of the last entry it carries, and a channel closed once its
// answer was learnt.
type eagerFlight struct {
	term, last uint64
	done       chan struct{}
}

// send passes sent on to the transport and learns from the answer.
func (r *commitRelay) send(id raft.ServerID, target raft.ServerAddress, sent *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := r.Transport.AppendEntries(id, target, sent, resp)
	switch {
	case err != nil:
		// The follower may have restarted, forgetting its commit index
		// (raft keeps it in memory only): tell it again next time.
		r.forgetTold(id)
	case resp.Success && resp.Term == sent.Term:
		if r.learn(id, sent) {
			r.behind()
		}
	default:
		r.dropHeld(id)
	}
	return err
}

// isBareHeartbeat reports whether req is raft's heartbeat: no entries, no
// previous entry to match, no commit index.
func isBareHeartbeat(req *raft.AppendEntriesRequest) bool {
	return len(req.Entries) == 0 && req.PrevLogEntry == 0 && req.PrevLogTerm == 0 && req.LeaderCommitIndex == 0
}

// usableCommit is the commit index a heartbeat of term to follower id may
// carry, or 0 when it has nothing new to tell (see the safety argument on
// commitRelay). It records the heartbeat's route.
func (r *commitRelay) usableCommit(id raft.ServerID, term uint64, target raft.ServerAddress, hb *raft.AppendEntriesRequest) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routeLocked(id, target, hb)
	if r.src == nil {
		return 0
	}
	commit := r.src.CommitIndex()
	if r.src.CurrentTerm() != term {
		return 0
	}
	p := r.peers[id]
	if p == nil || p.term != term {
		return 0
	}
	c := min(commit, p.match)
	if c <= p.told {
		return 0
	}
	return c
}

// route records how raft addressed req to peer id.
func (r *commitRelay) route(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest) {
	r.mu.Lock()
	r.routeLocked(id, target, req)
	r.mu.Unlock()
}

func (r *commitRelay) routeLocked(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest) {
	now := time.Now()
	if rt := r.routes[id]; rt != nil && rt.term == req.Term && rt.target == target {
		rt.at = now // the header is the leader's own, the same for the term
		return
	}
	r.routes[id] = &relayRoute{term: req.Term, target: target, header: req.RPCHeader, leader: req.Leader, at: now}
}

// eagerTarget is a follower the eager appender may send to: raft
// addressed it in the appender's term, it answers, and match is how far
// its log is known to equal the leader's (0 if unknown in this term).
type eagerTarget struct {
	id    raft.ServerID
	route relayRoute
	match uint64
}

// eagerTargets appends to buf the followers raft addressed in term since
// since (raft heartbeats each of its followers several times per
// heartbeat timeout; a peer it stopped addressing was removed), that
// have not failed their latest RPC, and that raft is not replicating to
// (no request of raft's with entries on the wire: under load raft's own
// requests keep the follower busy, and eager ones would compete).
func (r *commitRelay) eagerTargets(term uint64, since time.Time, buf []eagerTarget) []eagerTarget {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rt := range r.routes {
		if rt.term != term || rt.at.Before(since) || r.replicating[id] > 0 {
			continue
		}
		t := eagerTarget{id: id, route: *rt}
		if p := r.peers[id]; p != nil {
			if p.failing {
				continue
			}
			if p.term == term {
				t.match = p.match
			}
		}
		buf = append(buf, t)
	}
	return buf
}

// learn records a successful answer to req: how far the follower's log is
// known to match, and what commit index it now knows. It reports whether
// the follower could be told more than it knows.
func (r *commitRelay) learn(id raft.ServerID, req *raft.AppendEntriesRequest) (behind bool) {
	var matched, knows uint64
	if len(req.Entries) == 0 && req.PrevLogEntry == 0 {
		// A heartbeat matches nothing. Its commit index is 0 unless the
		// relay wrote one (at most match, which the follower holds), and
		// the follower then took it.
		knows = req.LeaderCommitIndex
	} else {
		matched = req.PrevLogEntry
		if n := len(req.Entries); n > 0 {
			matched = req.Entries[n-1].Index
		}
		knows = min(req.LeaderCommitIndex, matched)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peers[id]
	switch {
	case p == nil:
		p = &relayedPeer{term: req.Term}
		r.peers[id] = p
	case req.Term < p.term:
		return false // an answer from an older term, overtaken
	case req.Term > p.term:
		*p = relayedPeer{term: req.Term}
	}
	p.match = max(p.match, matched)
	p.told = max(p.told, knows)
	p.failing = false
	if r.src == nil {
		return false
	}
	return min(r.src.CommitIndex(), p.match) > p.told
}

// matchOf returns how far follower id's log is known to equal the
// leader's in term, the follower's match, as etcd's raft tracks it for
// each member. ok is false when the relay has heard no successful answer
// from it in term, or its latest RPC failed.
func (r *commitRelay) matchOf(id raft.ServerID, term uint64) (match uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peers[id]
	if p == nil || p.term != term || p.failing {
		return 0, false
	}
	return p.match, true
}

// forgetTold drops what follower id was told, keeping what matched, and
// marks it failing until it answers again.
func (r *commitRelay) forgetTold(id raft.ServerID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.peers[id]; p != nil {
		p.told = 0
		p.failing = true
		p.forgetHeld()
	}
}

// dropHeld forgets how far follower id is known to hold the log, after it
// refused a request.
func (r *commitRelay) dropHeld(id raft.ServerID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.peers[id]; p != nil {
		p.forgetHeld()
	}
}

// forgetHeld drops what held says of the follower; an eager answer in
// flight across the drop is not learnt (resets). Caller holds r.mu.
func (p *relayedPeer) forgetHeld() {
	p.held = 0
	p.resets++
}

// anyBehind reports whether a heartbeat would tell some follower that
// answers more than it knows.
func (r *commitRelay) anyBehind() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src == nil {
		return false
	}
	commit := r.src.CommitIndex()
	term := r.src.CurrentTerm()
	for _, p := range r.peers {
		if p.term == term && !p.failing && min(commit, p.match) > p.told {
			return true
		}
	}
	return false
}
