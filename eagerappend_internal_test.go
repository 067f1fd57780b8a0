package kvstore

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// eagerFollowers answers AppendEntries for several followers, recording
// the requests that carry entries; a follower in hold waits for a token
// on its channel before answering.
type eagerFollowers struct {
	transport.Transport // nil: only AppendEntries is used

	mu     sync.Mutex
	got    map[raft.ServerID][]*raft.AppendEntriesRequest
	refuse map[raft.ServerID]bool
	fail   map[raft.ServerID]error
	hold   map[raft.ServerID]chan struct{}
}

func newEagerFollowers() *eagerFollowers {
	return &eagerFollowers{got: map[raft.ServerID][]*raft.AppendEntriesRequest{}, refuse: map[raft.ServerID]bool{},
		fail: map[raft.ServerID]error{}, hold: map[raft.ServerID]chan struct{}{}}
}

func (f *eagerFollowers) AppendEntries(id raft.ServerID, _ raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	f.mu.Lock()
	hold := f.hold[id]
	f.mu.Unlock()
	if hold != nil && len(args.Entries) > 0 {
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(args.Entries) > 0 {
		f.got[id] = append(f.got[id], args)
	}
	if err := f.fail[id]; err != nil {
		return err
	}
	resp.Term, resp.Success = args.Term, !f.refuse[id]
	return nil
}

func (f *eagerFollowers) sent(id raft.ServerID) []*raft.AppendEntriesRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*raft.AppendEntriesRequest(nil), f.got[id]...)
}

func (f *eagerFollowers) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.got)
}

type leaderState struct {
	mu           sync.Mutex
	state        raft.RaftState
	term, commit uint64
}

func (s *leaderState) State() raft.RaftState { s.mu.Lock(); defer s.mu.Unlock(); return s.state }
func (s *leaderState) CurrentTerm() uint64   { s.mu.Lock(); defer s.mu.Unlock(); return s.term }
func (s *leaderState) CommitIndex() uint64   { s.mu.Lock(); defer s.mu.Unlock(); return s.commit }

// eagerRig is an appender of a leader in term 2 whose log holds entries
// 1..5 (entry 5 of term 1), with followers f1 and f2 that raft addressed.
type eagerRig struct {
	a     *eagerAppender
	relay *commitRelay
	net   *eagerFollowers
	src   *leaderState
	store *raft.InmemStore
}

func newEagerRig(t *testing.T) *eagerRig {
	t.Helper()
	net := newEagerFollowers()
	src := &leaderState{state: raft.Leader, term: 2, commit: 5}
	relay := newCommitRelay(net, func() {})
	relay.start(src)
	store := raft.NewInmemStore()
	for i := uint64(1); i <= 5; i++ {
		if err := store.StoreLog(&raft.Log{Index: i, Term: 1}); err != nil {
			t.Fatal(err)
		}
	}
	a := newEagerAppender(relay, store, time.Second)
	a.start(src)
	t.Cleanup(a.close)
	rig := &eagerRig{a: a, relay: relay, net: net, src: src, store: store}
	for _, id := range []raft.ServerID{"f1", "f2"} {
		rig.raftSends(id, &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("l"), Addr: []byte("l-addr")}, Term: 2, Leader: []byte("l-addr")})
	}
	return rig
}

// raftSends sends req to id as raft would, through the relay.
func (g *eagerRig) raftSends(id raft.ServerID, req *raft.AppendEntriesRequest) {
	var resp raft.AppendEntriesResponse
	_ = g.relay.AppendEntries(id, raft.ServerAddress(id+"-addr"), req, &resp)
}

// matched makes the relay learn that id's log matches up to index.
func (g *eagerRig) matched(id raft.ServerID, index uint64) {
	g.raftSends(id, &raft.AppendEntriesRequest{Term: 2, PrevLogEntry: index, PrevLogTerm: 1})
}

// offer offers entries from..to of term 2, as the disk guard would.
func (g *eagerRig) offer(from, to uint64) bool {
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 2, Data: []byte{byte(i)}})
	}
	return g.a.send(logs)
}

func entryRange(req *raft.AppendEntriesRequest) (uint64, uint64) {
	return req.Entries[0].Index, req.Entries[len(req.Entries)-1].Index
}

// A leader sends its new entries to the followers known to hold the entry
// before them, as a request raft could have sent: its term, the previous
// entry's index and term, its own header, copies of the entries, a commit
// index no later than the last entry.
func TestEagerAppendSendsToFollowersHoldingPrevious(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newEagerRig(t)
		g.matched("f1", 5)
		g.matched("f2", 3) // lags: raft's replication catches it up
		g.src.commit = 9   // later than the entries sent: capped at their last
		logs := []*raft.Log{{Index: 6, Term: 2, Data: []byte("a")}, {Index: 7, Term: 2, Data: []byte("b")}}
		if !g.a.send(logs) {
			t.Fatal("send reported nothing sent")
		}
		synctest.Wait()
		got := g.net.sent("f1")
		if len(got) != 1 {
			t.Fatalf("f1 got %d requests, want 1", len(got))
		}
		req := got[0]
		if req.Term != 2 || req.PrevLogEntry != 5 || req.PrevLogTerm != 1 || req.LeaderCommitIndex != 7 ||
			string(req.RPCHeader.Addr) != "l-addr" || string(req.Leader) != "l-addr" || len(req.Entries) != 2 {
			t.Fatalf("request %+v", req)
		}
		for i, e := range req.Entries {
			if e == logs[i] || e.Index != logs[i].Index || string(e.Data) != string(logs[i].Data) {
				t.Fatalf("entry %d: %+v, want a copy of %+v", i, e, logs[i])
			}
		}
		if n := len(g.net.sent("f2")); n != 0 {
			t.Fatalf("f2, not known to hold entry 5, got %d requests", n)
		}
		// The answer counts as a match for the relay: f1 holds 7 now.
		g.src.commit = 7
		if !g.relay.anyBehind() {
			t.Fatal("the relay did not learn f1's match from the eager answer")
		}
	})
}

// Nothing is sent for an append that is not a leader's own in its current
// term, before raft exists, or after close.
func TestEagerAppendOnlyAsLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newEagerRig(t)
		g.matched("f1", 5)
		g.src.state = raft.Follower
		if g.offer(6, 6) {
			t.Fatal("a follower's append was sent")
		}
		g.src.state = raft.Leader
		g.src.term = 3 // entries of term 2 are not this leader's new ones
		if g.offer(6, 6) {
			t.Fatal("an append of an older term was sent")
		}
		g.src.term = 2
		g.a.close()
		if g.offer(6, 6) {
			t.Fatal("sent after close")
		}
		synctest.Wait()
		if n := len(g.net.sent("f1")); n != 0 {
			t.Fatalf("f1 got %d requests", n)
		}
		idle := newEagerAppender(g.relay, g.store, time.Second)
		if idle.send([]*raft.Log{{Index: 6, Term: 2}}) {
			t.Fatal("sent before raft exists")
		}
	})
}

// Batches offered while a request is in flight to a follower wait behind
// it and go in one request, following on from it.
func TestEagerAppendQueuesBehindRequestInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newEagerRig(t)
		g.matched("f1", 5)
		hold := make(chan struct{})
		g.net.hold["f1"] = hold
		g.offer(6, 6)
		synctest.Wait() // in flight, held
		if !g.offer(7, 8) || !g.offer(9, 9) {
			t.Fatal("batches behind the request in flight were not queued")
		}
		hold <- struct{}{}
		hold <- struct{}{}
		synctest.Wait()
		got := g.net.sent("f1")
		if len(got) != 2 {
			t.Fatalf("f1 got %d requests, want 2", len(got))
		}
		if from, to := entryRange(got[1]); from != 7 || to != 9 || got[1].PrevLogEntry != 6 || got[1].PrevLogTerm != 2 {
			t.Fatalf("second request: entries %d..%d after %d/%d, want 7..9 after 6/2", from, to, got[1].PrevLogEntry, got[1].PrevLogTerm)
		}
	})
}

// A refused request breaks the chain: the next batch goes to that
// follower only once the relay knows it holds the entry before.
func TestEagerAppendRefusedBreaksChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newEagerRig(t)
		g.matched("f1", 5)
		g.net.refuse["f1"] = true
		g.offer(6, 6)
		synctest.Wait()
		g.net.refuse["f1"] = false
		if g.offer(7, 7) {
			t.Fatal("sent after a refusal, before the follower is known to hold entry 6")
		}
		g.matched("f1", 7)
		if !g.offer(8, 8) {
			t.Fatal("not sent once the follower is known to hold entry 7")
		}
		synctest.Wait()
		if got := g.net.sent("f1"); len(got) != 2 || got[1].PrevLogEntry != 7 {
			t.Fatalf("requests %d, want 2, the second after entry 7", len(got))
		}
	})
}

// Followers whose last RPC failed, or that raft stopped addressing (a
// removed member), are not sent to.
func TestEagerAppendSkipsFailingAndStaleFollowers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newEagerRig(t)
		g.matched("f1", 5)
		g.matched("f2", 5)
		g.net.fail["f1"] = errors.New("unreachable")
		g.raftSends("f1", &raft.AppendEntriesRequest{Term: 2}) // its heartbeat fails
		g.offer(6, 6)
		synctest.Wait()
		if n := len(g.net.sent("f1")); n != 0 {
			t.Fatalf("f1, failing, got %d requests", n)
		}
		if n := len(g.net.sent("f2")); n != 1 {
			t.Fatalf("f2 got %d requests, want 1", n)
		}
		g.net.reset()
		time.Sleep(2 * time.Second) // raft addressed nobody for longer than fresh
		if g.offer(7, 7) {
			t.Fatal("sent to followers raft stopped addressing")
		}
	})
}

// A leader's first batch of a term names an entry of an earlier term: its
// term comes from the log.
func TestEagerAppendPreviousTermFromLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newEagerRig(t)
		g.matched("f1", 5)
		g.offer(6, 6)
		synctest.Wait()
		got := g.net.sent("f1")
		if len(got) != 1 || got[0].PrevLogTerm != 1 {
			t.Fatalf("requests %+v, want one naming entry 5 of term 1", got)
		}
	})
}
