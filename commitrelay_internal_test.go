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

// relayFollower answers AppendEntries as a follower would, recording what
// it was sent.
type relayFollower struct {
	transport.Transport // nil: only AppendEntries is used
	got                 []raft.AppendEntriesRequest
	fail                error
	success             bool
	term                uint64
}

func (f *relayFollower) AppendEntries(_ raft.ServerID, _ raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	f.got = append(f.got, *args)
	if f.fail != nil {
		return f.fail
	}
	resp.Success, resp.Term = f.success, f.term
	return nil
}

type fixedCommit struct{ commit, term uint64 }

func (s *fixedCommit) CommitIndex() uint64 { return s.commit }
func (s *fixedCommit) CurrentTerm() uint64 { return s.term }

func relayUnderTest(t *testing.T) (*commitRelay, *relayFollower, *fixedCommit, *int) {
	t.Helper()
	f := &relayFollower{success: true, term: 2}
	src := &fixedCommit{commit: 0, term: 2}
	behind := new(int)
	r := newCommitRelay(f, func() { *behind++ })
	r.start(src)
	return r, f, src, behind
}

func heartbeat(term uint64) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{Term: term}
}

func appendReq(term, prev, commit uint64, indexes ...uint64) *raft.AppendEntriesRequest {
	req := &raft.AppendEntriesRequest{Term: term, PrevLogEntry: prev, PrevLogTerm: term, LeaderCommitIndex: commit}
	for _, i := range indexes {
		req.Entries = append(req.Entries, &raft.Log{Index: i, Term: term})
	}
	return req
}

func (r *commitRelay) sendT(t *testing.T, req *raft.AppendEntriesRequest) {
	t.Helper()
	var resp raft.AppendEntriesResponse
	_ = r.AppendEntries("f1", "addr", req, &resp)
}

func lastSentCommit(f *relayFollower) uint64 { return f.got[len(f.got)-1].LeaderCommitIndex }

func TestCommitRelayTellsAtMostWhatMatched(t *testing.T) {
	r, f, src, behind := relayUnderTest(t)
	src.commit = 7
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 0 {
		t.Fatalf("a heartbeat before any match carried commit %d", c)
	}
	r.sendT(t, appendReq(2, 2, 3, 3, 4, 5)) // entries 3..5, commit 3 known to it
	if *behind != 1 {
		t.Fatalf("behind called %d times after an answer showing entries 4..5 committed and untold", *behind)
	}
	hb := heartbeat(2)
	r.sendT(t, hb)
	if c := lastSentCommit(f); c != 5 {
		t.Fatalf("heartbeat carried commit %d, want the match 5 (commit is 7)", c)
	}
	if hb.LeaderCommitIndex != 0 {
		t.Fatal("raft's heartbeat request was written into")
	}
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 0 {
		t.Fatalf("a heartbeat with nothing new carried commit %d", c)
	}
	if r.anyBehind() {
		t.Fatal("anyBehind with every follower told all it matched")
	}
	// The commit index moving below the match is told as it is.
	r.sendT(t, appendReq(2, 5, 5, 6, 7, 8, 9))
	src.commit = 8
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 8 {
		t.Fatalf("heartbeat carried commit %d, want the commit 8 (match is 9)", c)
	}
}

func TestCommitRelayTellsNothingAcrossTerms(t *testing.T) {
	r, f, src, _ := relayUnderTest(t)
	src.commit = 5
	r.sendT(t, appendReq(2, 0, 0, 1, 2, 3, 4, 5))
	// This node moved to term 3 (it lost leadership, or won again): its
	// commit index may now cover entries the follower's log of term 2
	// differs on.
	src.term = 3
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 0 {
		t.Fatalf("a heartbeat of term 2 sent in term 3 carried commit %d", c)
	}
	r.sendT(t, heartbeat(3))
	if c := lastSentCommit(f); c != 0 {
		t.Fatalf("a heartbeat of term 3 carried commit %d from term 2's match", c)
	}
	// A late answer from term 2 does not bring its match back.
	f.term = 3
	r.sendT(t, appendReq(3, 5, 5)) // matches up to 5 in term 3, told 5
	src.commit = 6
	r.sendT(t, appendReq(2, 0, 0, 1, 2, 3, 4, 5, 6))
	r.sendT(t, heartbeat(3))
	if c := lastSentCommit(f); c != 0 {
		t.Fatalf("a heartbeat carried commit %d learnt from an older term's answer", c)
	}
}

func TestCommitRelayLearnsOnlyFromSuccess(t *testing.T) {
	r, f, src, behind := relayUnderTest(t)
	src.commit = 5
	f.success = false
	r.sendT(t, appendReq(2, 0, 0, 1, 2, 3, 4, 5))
	f.success = true
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 0 || *behind != 0 {
		t.Fatalf("a refused append taught a match: heartbeat commit %d, behind %d", c, *behind)
	}
	// An error may mean the follower restarted and forgot its commit
	// index: it is told again.
	r.sendT(t, appendReq(2, 0, 5, 1, 2, 3, 4, 5))
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 0 {
		t.Fatalf("a follower told commit 5 by the append was told %d again", c)
	}
	f.fail = errors.New("connection reset")
	r.sendT(t, heartbeat(2))
	if r.anyBehind() {
		t.Fatal("anyBehind for a follower whose last RPC failed: nudges would wake raft for nothing")
	}
	f.fail = nil
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 5 {
		t.Fatalf("after a failed heartbeat, the next carried commit %d, want 5", c)
	}
}

func TestCommitRelayBeforeRaftStarts(t *testing.T) {
	f := &relayFollower{success: true, term: 2}
	r := newCommitRelay(f, func() { t.Fatal("behind called before raft started") })
	r.sendT(t, appendReq(2, 0, 0, 1, 2))
	r.sendT(t, heartbeat(2))
	if c := lastSentCommit(f); c != 0 || r.anyBehind() {
		t.Fatalf("heartbeat commit %d before raft started", c)
	}
}

// raft's own request for entries an eager request already stored on the
// follower, in the same term, is answered by the relay; anything it does
// not know the follower holds goes out.
func TestCommitRelayAnswersHeldEntries(t *testing.T) {
	r, f, src, _ := relayUnderTest(t)
	var resp raft.AppendEntriesResponse
	if err := r.appendEagerly("f1", "addr", appendReq(2, 2, 0, 3, 4, 5), &resp); err != nil || !resp.Success {
		t.Fatalf("eager request: %+v %v", resp, err)
	}
	sent := len(f.got)
	resp = raft.AppendEntriesResponse{}
	if err := r.AppendEntries("f1", "addr", appendReq(2, 2, 0, 3, 4, 5), &resp); err != nil {
		t.Fatal(err)
	}
	if len(f.got) != sent {
		t.Fatal("raft's request for entries the follower holds was sent again")
	}
	if !resp.Success || resp.Term != 2 || resp.LastLog != 5 {
		t.Fatalf("answer %+v, want success in term 2 with last log 5", resp)
	}
	for _, c := range []struct {
		why string
		req *raft.AppendEntriesRequest
	}{
		{"an entry past the match", appendReq(2, 4, 0, 5, 6)},
		{"no entries (raft's commit-timeout request)", appendReq(2, 5, 5)},
	} {
		before := len(f.got)
		r.sendT(t, c.req)
		if len(f.got) != before+1 {
			t.Errorf("%s: not sent", c.why)
		}
	}
	// A term that moved: the match is of term 2.
	src.term = 3
	before := len(f.got)
	r.sendT(t, appendReq(3, 2, 0, 3))
	if len(f.got) != before+1 {
		t.Error("a request of a later term answered from an older term's match")
	}
	// A follower whose last RPC failed may have lost its log's tail.
	src.term = 2
	r2, f2, _, _ := relayUnderTest(t)
	_ = r2.appendEagerly("f1", "addr", appendReq(2, 2, 0, 3, 4, 5), &resp)
	f2.fail = errors.New("connection reset")
	r2.sendT(t, heartbeat(2))
	f2.fail = nil
	before = len(f2.got)
	r2.sendT(t, appendReq(2, 2, 0, 3, 4, 5))
	if len(f2.got) != before+1 {
		t.Error("a request to a failing follower answered by the relay")
	}
	// A refusal in the term (a member removed, wiped and added back under
	// the same ID refuses raft's first probe): what it held is forgotten,
	// even once it answers again.
	r3, f3, _, _ := relayUnderTest(t)
	_ = r3.appendEagerly("f1", "addr", appendReq(2, 2, 0, 3, 4, 5), &resp)
	f3.success = false
	r3.sendT(t, appendReq(2, 5, 0))
	f3.success = true
	r3.sendT(t, heartbeat(2))
	before = len(f3.got)
	r3.sendT(t, appendReq(2, 2, 0, 3, 4, 5))
	if len(f3.got) != before+1 {
		t.Error("a request to a follower that refused one since answered by the relay")
	}
}

// gatedFollower answers AppendEntries once released, succeeding unless
// told to refuse.
type gatedFollower struct {
	transport.Transport
	mu      sync.Mutex
	calls   int
	release chan bool // receives whether to succeed
}

func (f *gatedFollower) AppendEntries(_ raft.ServerID, _ raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	resp.Success, resp.Term = <-f.release, args.Term
	return nil
}

func (f *gatedFollower) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// raft's own request for entries an eager request in flight carries waits
// for its answer instead of following it to the follower: answered by the
// relay when the eager one succeeds, sent when it was refused.
func TestCommitRelayWaitsForEagerInFlight(t *testing.T) {
	for _, eagerTaken := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			f := &gatedFollower{release: make(chan bool)}
			r := newCommitRelay(f, func() {})
			r.start(&fixedCommit{term: 2})
			go func() {
				var resp raft.AppendEntriesResponse
				_ = r.appendEagerly("f1", "addr", appendReq(2, 2, 0, 3, 4), &resp)
			}()
			synctest.Wait() // the eager request is at the follower
			var resp raft.AppendEntriesResponse
			answered := make(chan error, 1)
			go func() { answered <- r.AppendEntries("f1", "addr", appendReq(2, 2, 0, 3, 4), &resp) }()
			synctest.Wait()
			select {
			case <-answered:
				t.Fatal("raft's request answered before the eager one was")
			default:
			}
			if n := f.callCount(); n != 1 {
				t.Fatalf("follower got %d requests while the eager one was in flight, want 1", n)
			}
			f.release <- eagerTaken
			if !eagerTaken {
				synctest.Wait()
				if n := f.callCount(); n != 2 {
					t.Fatalf("after a refused eager request, follower got %d requests, want raft's too", n)
				}
				f.release <- true
			}
			if err := <-answered; err != nil || !resp.Success {
				t.Fatalf("raft's request: %+v %v", resp, err)
			}
			if eagerTaken && f.callCount() != 1 {
				t.Fatalf("follower got %d requests, want only the eager one", f.callCount())
			}
		})
	}
}

// The eager appender is offered no follower raft's own replication is
// streaming to (a request with entries on the wire): under load raft keeps
// each follower's disk busy, and a second stream would only add requests.
func TestCommitRelayNoEagerTargetWhileRaftReplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &gatedFollower{release: make(chan bool)}
		r := newCommitRelay(f, func() {})
		r.start(&fixedCommit{term: 2})
		targets := func() int { return len(r.eagerTargets(2, time.Now().Add(-time.Hour), nil)) }
		done := make(chan struct{})
		go func() {
			var resp raft.AppendEntriesResponse
			_ = r.AppendEntries("f1", "addr", appendReq(2, 2, 0, 3, 4), &resp)
			close(done)
		}()
		synctest.Wait()
		if n := targets(); n != 0 {
			t.Fatalf("%d eager targets while raft's request is on the wire, want none", n)
		}
		f.release <- true
		<-done
		if n := targets(); n != 1 {
			t.Fatalf("%d eager targets once raft's request was answered, want 1", n)
		}
	})
}
