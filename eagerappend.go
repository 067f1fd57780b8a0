package kvstore

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// A hashicorp/raft leader writes new entries to its own log, fsync
// included, before its replicators send them (hashicorp/raft #414), so
// each write waited for two disk writes in series: the leader's, then a
// follower's. Raft does not need that order: the leader may write its log
// in parallel with replicating it, as long as it counts itself towards a
// majority only once its own write is done (the Raft thesis, §10.2.1;
// etcd's raft does so). hashicorp/raft counts the leader's own entries
// after its log store's StoreLogs returns, whatever the transport did in
// the meantime.
//
// The eager appender makes that overlap from outside the library. When
// the leader's append has passed the disk guard's checks and its write
// starts (storage.DiskGuard.SetEarlySend), the appender sends the same
// entries, in an AppendEntries request of the leader's term naming the
// entry before them, to each follower known to hold that entry, through
// the commit relay. The follower's raft handles it as any request of its
// leader: it checks the previous entry, appends and fsyncs. raft's own
// request for those entries, made once the leader's write returned, is
// answered by the commit relay from the eager answer (commitRelay.held),
// waiting for it if it is still on its way, so it neither crosses the
// network again nor queues behind the follower's next disk write; if the
// eager request failed, raft's goes out as usual. A write waits for the
// slower of the two disk writes and one round trip, not for both writes
// and two round trips.
//
// Safety. The request is one the leader could have sent itself: its term
// is the leader's current term, its entries are the leader's log of that
// term, it names the entry before them for the follower's log matching
// check, and its commit index is min(commit, its last entry), read while
// the term is still the leader's (what raft's own requests carry, at
// most). Raft is correct under duplicated, reordered and delayed requests,
// and this is one more. Its answer counts for nothing in raft's state:
// raft's replicators count only the answers to their own requests. The
// commit relay learns the follower's match from it, which it is, by the
// same argument as for raft's requests.
//
// What changes for callers: an entry may reach followers before the leader
// stored it, so a leader whose own append then fails no longer knows that
// the write did not happen (a later leader that holds the entry may commit
// it). The disk guard reports such a failure with storage.ErrSentUnstored,
// which the node returns as ErrOutcomeUnknown. An append the guard refuses
// before it is written (a full disk the guard already knows of, raft-wal's
// sealed tail) is not sent: it is still ErrNoSpace, certainly not done.
//
// Under load it steps aside: a follower raft's own replication is
// streaming to (a request with entries on the wire, commitRelay.
// eagerTargets) is not sent to, so the two never compete for the
// follower's main loop and disk; raft's requests then carry the entries as
// they would without the appender, several batches merged. Measured over
// TCP with 64 writers, competing cost a fifth of the throughput
// (BENCHMARKS.md, "Eager append"); the overlap pays where raft leaves the
// follower idle between writes.
//
// Cost: an entry crosses the network twice to a follower only when raft's
// own request is made before the eager one started or after it failed.
// Followers are sent to only when they are known to hold the previous
// entry, so a lagging or restarted follower is left to raft's replication
// and gets no request it would refuse.
type eagerAppender struct {
	relay *commitRelay
	// logs is the node's log store: the term of the entry before a batch,
	// when it is not the last one sent.
	logs raft.LogStore
	// fresh is how recently raft must have addressed a follower for the
	// appender to send to it (raft heartbeats each follower several times
	// per heartbeat timeout; it stops for a removed one).
	fresh time.Duration

	mu     sync.Mutex
	src    eagerSource // nil until raft exists
	closed bool
	// term, lastIndex and lastTerm are the newest entry offered while
	// leading in term (a leader's log only grows within its term).
	term, lastIndex, lastTerm uint64
	peers                     map[raft.ServerID]*eagerPeer
	targets                   []eagerTarget // scratch, under mu
	wg                        sync.WaitGroup
}

// eagerMaxPending is how many entries may wait for a follower behind the
// request in flight to it; a follower that far behind is left to raft.
const eagerMaxPending = 1024

// eagerSource is what the appender reads of raft (*raft.Raft satisfies it).
type eagerSource interface {
	State() raft.RaftState
	CurrentTerm() uint64
	CommitIndex() uint64
}

// eagerPeer is the appender's state for one follower, in one term.
type eagerPeer struct {
	term uint64
	// end is the last entry sent or queued to the follower in term, 0 if
	// none or the chain broke (a refused or failed request): the next
	// batch is sent only if the follower holds the entry before it.
	end uint64
	// pending are entries queued behind the request in flight, following
	// the entry prevIndex of term prevTerm.
	pending             []*raft.Log
	prevIndex, prevTerm uint64
	route               relayRoute
	// sending is set while a goroutine sends to the follower.
	sending bool
}

func newEagerAppender(relay *commitRelay, logs raft.LogStore, fresh time.Duration) *eagerAppender {
	return &eagerAppender{relay: relay, logs: logs, fresh: fresh, peers: make(map[raft.ServerID]*eagerPeer)}
}

// start gives the appender raft's state; it sends nothing before.
func (a *eagerAppender) start(src eagerSource) {
	a.mu.Lock()
	a.src = src
	a.mu.Unlock()
}

// close stops the appender and waits for its goroutines, which end with
// the request each has in flight (the transport bounds it; closing the
// transport first ends it at once). Later offers send nothing.
func (a *eagerAppender) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.wg.Wait()
}

// send is the disk guard's early sender: on raft's goroutine, when an
// append's write starts. If this node leads in the entries' term, it
// queues them to each follower known to hold the entry before them, and
// reports whether it queued them to any. It never blocks on the network.
func (a *eagerAppender) send(logs []*raft.Log) bool {
	n := len(logs)
	if n == 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.src == nil || a.closed {
		return false
	}
	term := logs[0].Term
	if a.src.State() != raft.Leader || a.src.CurrentTerm() != term {
		return false // a follower's append, or a leader that stepped down
	}
	prev := logs[0].Index - 1
	prevTerm, ok := a.termOfLocked(term, prev)
	a.term, a.lastIndex, a.lastTerm = term, logs[n-1].Index, logs[n-1].Term
	if !ok {
		return false
	}
	a.targets = a.relay.eagerTargets(term, time.Now().Add(-a.fresh), a.targets[:0])
	var ents []*raft.Log
	sent := false
	for _, t := range a.targets {
		p := a.peers[t.id]
		if p == nil {
			p = &eagerPeer{}
			a.peers[t.id] = p
		}
		if p.term != term {
			p.term, p.end, p.pending = term, 0, nil
		}
		if p.end != prev {
			p.pending = nil // a chain that broke, or none
			if t.match != prev {
				p.end = 0
				continue // not known to hold prev: raft's replication catches it up
			}
		}
		if len(p.pending)+n > eagerMaxPending {
			p.end, p.pending = 0, nil // far behind: left to raft
			continue
		}
		if ents == nil {
			ents = copyLogs(logs)
		}
		if len(p.pending) == 0 {
			p.prevIndex, p.prevTerm = prev, prevTerm
		}
		p.pending = append(p.pending, ents...)
		p.end = logs[n-1].Index
		p.route = t.route
		sent = true
		if !p.sending {
			p.sending = true
			a.wg.Add(1)
			go a.run(t.id, p)
		}
	}
	return sent
}

// termOfLocked returns the term of entry index of this leader's log in
// term, from the last entry offered if it is that one, else from the log.
func (a *eagerAppender) termOfLocked(term, index uint64) (uint64, bool) {
	switch {
	case index == 0:
		return 0, true
	case a.term == term && a.lastIndex == index:
		return a.lastTerm, true
	}
	var l raft.Log
	if err := a.logs.GetLog(index, &l); err != nil {
		return 0, false
	}
	return l.Term, true
}

// copyLogs copies the entries raft handed its log store: on the leader
// they point into raft's futures, which a follower's in-memory log would
// otherwise keep alive. Data is shared; raft never writes to it.
func copyLogs(logs []*raft.Log) []*raft.Log {
	vals := make([]raft.Log, len(logs))
	ptrs := make([]*raft.Log, len(logs))
	for i, l := range logs {
		vals[i] = *l
		ptrs[i] = &vals[i]
	}
	return ptrs
}

// run sends follower id's pending entries, one request at a time, until
// none are left, its chain breaks, the term moves on or the appender
// closes.
func (a *eagerAppender) run(id raft.ServerID, p *eagerPeer) {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		if a.closed || len(p.pending) == 0 {
			p.sending = false
			a.mu.Unlock()
			return
		}
		src := a.src
		last := p.pending[len(p.pending)-1]
		req := &raft.AppendEntriesRequest{
			RPCHeader:    p.route.header,
			Term:         p.term,
			Leader:       p.route.leader,
			PrevLogEntry: p.prevIndex,
			PrevLogTerm:  p.prevTerm,
			Entries:      p.pending,
		}
		target := p.route.target
		p.pending = nil
		p.prevIndex, p.prevTerm = last.Index, last.Term
		a.mu.Unlock()

		// Read the commit index, then check the term has not moved.
		commit := src.CommitIndex()
		if src.CurrentTerm() != req.Term {
			if a.breakChain(p, req.Term) {
				return
			}
			continue
		}
		req.LeaderCommitIndex = min(commit, last.Index)
		var resp raft.AppendEntriesResponse
		err := a.relay.appendEagerly(id, target, req, &resp)
		if (err != nil || !resp.Success) && a.breakChain(p, req.Term) {
			return
		}
	}
}

// breakChain ends p's chain of term after a request that was not taken:
// the next batch goes to it only once the relay knows it holds the entry
// before. It reports whether the sending goroutine stops; it goes on with
// what a later term queued meanwhile.
func (a *eagerAppender) breakChain(p *eagerPeer, term uint64) (stop bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.term == term {
		p.end, p.pending = 0, nil
	}
	if len(p.pending) > 0 && !a.closed {
		return false
	}
	p.sending = false
	return true
}
