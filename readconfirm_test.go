package kvstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// holdingTransport passes everything through to its transport but can hold
// the answer to one successful AppendEntries (a heartbeat or an append) to
// a chosen peer: the peer has received and answered it, and the answer
// waits on the way back, as one delayed in the network, or in the socket
// buffer of a leader that was paused, would.
type holdingTransport struct {
	transport.Transport
	mu      sync.Mutex
	target  raft.ServerAddress // the peer whose next answer to hold; empty when disarmed
	held    chan struct{}      // closed once an answer is held
	release chan struct{}      // closing it lets the held answer through
}

func (h *holdingTransport) holdNextAnswerFrom(target raft.ServerAddress) (held, release chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.target, h.held, h.release = target, make(chan struct{}), make(chan struct{})
	return h.held, h.release
}

func (h *holdingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := h.Transport.AppendEntries(id, target, args, resp)
	h.mu.Lock()
	hold := err == nil && resp.Success && target == h.target
	held, release := h.held, h.release
	if hold {
		h.target = ""
	}
	h.mu.Unlock()
	if hold {
		close(held)
		<-release
	}
	return err
}

// A linearizable read on the leader must not be confirmed by an answer
// that left a follower before the read arrived: it must see every write
// acknowledged before it began, as etcd's do. Here the leader n1 has a long
// lease, standing in for a leader paused past its lease: an answer of n3's
// to its heartbeat is held on the way back, n1 is cut off, n2 and n3 elect
// a leader of a later term, which acknowledges a write of v2, and only then
// does n1 get a read, with the held answer let through once the read
// waits. raft's VerifyLeader counts an answer to any message that was on
// its way when it was asked (replication.go, notifyAll), so a read round
// confirmed that way answered v1 (30 runs of 30). The leader's read rounds
// now send heartbeats of their own after the readers joined and count only
// their answers (readconfirm.go): the read fails (n1 reaches nobody) or,
// never, returns v1.
func TestLeaderReadIsNotConfirmedByAnAnswerSentBeforeIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// n2 and n3 campaign after 15–30 s without a leader; n1 sends
		// heartbeats every 6–12 s and keeps its lease for 60 s without
		// hearing from a majority.
		hold := &holdingTransport{}
		network, nodes := openLedByN1(t, func(mem *transport.MemTransport) transport.Transport {
			hold.Transport = mem
			return hold
		}, kvstore.WithRaftTiming(60*time.Second, 60*time.Second, 60*time.Second, 0),
			kvstore.WithRaftTiming(15*time.Second, 15*time.Second, 7*time.Second, 0))
		n1 := nodes[0]
		ctx := context.Background()
		if _, err := n1.Put(ctx, []byte("k"), []byte("v1")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		held, release := hold.holdNextAnswerFrom("n3")
		<-held
		network.Isolate("n1")
		next := waitLeaderAmong(nodes[1:])
		if _, err := next.Put(ctx, []byte("k"), []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if !n1.IsLeader() {
			t.Fatal("n1 stepped down before the read: the test needs a leader that still believes it leads")
		}

		type result struct {
			get *kvstore.GetResponse
			err error
		}
		done := make(chan result, 1)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		go func() {
			get, err := n1.Get(rctx, []byte("k"))
			done <- result{get, err}
		}()
		synctest.Wait() // the read waits for its round
		close(release)
		r := <-done
		if r.err == nil && (len(r.get.KVs) != 1 || string(r.get.KVs[0].Value) != "v2") {
			t.Fatalf("linearizable read on the cut-off leader returned %s after v2 was acknowledged by the leader of a later term", describeKVs(r.get))
		}
		network.Heal()
	})
}

// openLedByN1 opens n1, n2 and n3 on one in-memory network, n1's transport
// wrapped by wrap and with n1Timing, the others with timing, and returns
// once n1 leads. The nodes close at the end of the test.
func openLedByN1(t *testing.T, wrap func(*transport.MemTransport) transport.Transport, n1Timing, timing kvstore.Option) (*transport.Network, []*kvstore.Node) {
	t.Helper()
	network := transport.NewNetwork()
	ids := []string{"n1", "n2", "n3"}
	peers := make([]kvstore.Peer, len(ids))
	for i, id := range ids {
		peers[i] = kvstore.Peer{ID: id, Address: id}
	}
	nodes := make([]*kvstore.Node, len(ids))
	for i, id := range ids {
		mem, err := network.Join(id)
		if err != nil {
			t.Fatal(err)
		}
		var tr transport.Transport = mem
		opt := timing
		if id == "n1" {
			tr, opt = wrap(mem), n1Timing
		}
		n, err := kvstore.Open("", kvstore.WithID(id), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
			kvstore.WithBootstrap(peers...), opt)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		t.Cleanup(func() { n.Close() })
	}
	if leader := waitLeaderAmong(nodes); leader != nodes[0] {
		if err := leader.TransferLeadership(context.Background(), "n1"); err != nil {
			t.Fatal(err)
		}
		for !nodes[0].IsLeader() {
			time.Sleep(time.Millisecond)
		}
	}
	return network, nodes
}

// stallingTransport passes everything through to its transport, except
// that AppendEntries to a stalled peer waits until released (a follower
// that does not answer) and, after that, fails at once while the peer is
// refused; it counts the requests to the peer.
type stallingTransport struct {
	transport.Transport
	mu       sync.Mutex
	peer     raft.ServerAddress
	stalled  chan struct{} // closed to release the stalled requests; nil when not stalling
	refused  bool
	waiting  int // requests to peer waiting now
	maxWait  int // the most that waited at once
	attempts int // requests to peer while stalled or refused
}

func (s *stallingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	s.mu.Lock()
	stalled, refused := s.stalled, s.refused
	if target == s.peer && (stalled != nil || refused) {
		s.attempts++
	}
	if target != s.peer || stalled == nil {
		s.mu.Unlock()
		if target == s.peer && refused {
			return fmt.Errorf("test: %s refuses connections", target)
		}
		return s.Transport.AppendEntries(id, target, args, resp)
	}
	s.waiting++
	s.maxWait = max(s.maxWait, s.waiting)
	s.mu.Unlock()
	<-stalled
	s.mu.Lock()
	s.waiting--
	s.mu.Unlock()
	return fmt.Errorf("test: %s did not answer", target)
}

func (s *stallingTransport) counts() (maxWait, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxWait, s.attempts
}

// A voter that does not answer costs the leader's read rounds nothing but
// its vote, whatever the read rate: each voter has one read heartbeat in
// flight at most, and one whose heartbeat failed is left out for a while.
// Here n3 first never answers, then refuses at once; 200 linearizable reads
// on n1 are each confirmed by n2 meanwhile. At most four requests to n3
// wait at once (raft's heartbeat, its replication, the eager appender and
// one read heartbeat), and a refusing n3 gets a handful, not one per read.
func TestLeaderReadRoundsSpareAVoterThatDoesNotAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stall := &stallingTransport{peer: "n3"}
		_, nodes := openLedByN1(t, func(mem *transport.MemTransport) transport.Transport {
			stall.Transport = mem
			return stall
		}, kvstore.WithRaftTiming(time.Second, time.Second, 500*time.Millisecond, 0),
			kvstore.WithRaftTiming(time.Second, time.Second, 500*time.Millisecond, 0))
		n1 := nodes[0]
		ctx := context.Background()
		if _, err := n1.Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		reads := func() {
			t.Helper()
			for range 200 {
				if _, err := n1.Get(ctx, []byte("k")); err != nil {
					t.Fatalf("linearizable read on n1 with n2 answering: %v", err)
				}
			}
		}

		stall.mu.Lock()
		stall.stalled = make(chan struct{})
		stall.mu.Unlock()
		reads()
		if maxWait, _ := stall.counts(); maxWait > 4 {
			t.Errorf("%d requests to the silent n3 waited at once after 200 reads, want at most 4 (one read heartbeat)", maxWait)
		}

		stall.mu.Lock()
		close(stall.stalled)
		stall.stalled, stall.refused, stall.attempts = nil, true, 0
		stall.mu.Unlock()
		synctest.Wait()
		reads()
		if _, attempts := stall.counts(); attempts > 10 {
			t.Errorf("n3 refusing at once got %d requests during 200 reads (no virtual time passing), want a handful", attempts)
		}
	})
}

// waitLeaderAmong waits (in the bubble's virtual time) until one of nodes
// leads and is ready, and returns it.
func waitLeaderAmong(nodes []*kvstore.Node) *kvstore.Node {
	for {
		for _, n := range nodes {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func describeKVs(get *kvstore.GetResponse) string {
	if len(get.KVs) == 0 {
		return fmt.Sprintf("nothing at revision %d", get.Header.Revision)
	}
	return fmt.Sprintf("%q at revision %d", get.KVs[0].Value, get.Header.Revision)
}
