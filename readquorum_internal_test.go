package kvstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/transport"
)

func TestAskerCompletesMajority(t *testing.T) {
	voter := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter} }
	learner := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Nonvoter} }
	cfg := func(servers ...raft.Server) raft.Configuration { return raft.Configuration{Servers: servers} }
	for _, tc := range []struct {
		name  string
		cfg   raft.Configuration
		asker string
		want  bool
	}{
		{"two voters", cfg(voter("l"), voter("f")), "f", true},
		{"three voters", cfg(voter("l"), voter("f"), voter("g")), "f", true},
		{"three voters and learners", cfg(voter("l"), learner("x"), voter("f"), voter("g"), learner("y")), "f", true},
		{"four voters", cfg(voter("l"), voter("f"), voter("g"), voter("h")), "f", false},
		{"five voters", cfg(voter("l"), voter("f"), voter("g"), voter("h"), voter("i")), "f", false},
		{"asker a learner", cfg(voter("l"), voter("g"), learner("f")), "f", false},
		{"asker unknown", cfg(voter("l"), voter("g")), "f", false},
		{"leader not a voter", cfg(learner("l"), voter("f"), voter("g")), "f", false},
		{"leader not in it", cfg(voter("f"), voter("g")), "f", false},
		{"asker is the leader", cfg(voter("l"), voter("f")), "l", false},
		{"leader alone", cfg(voter("l")), "f", false},
	} {
		if got := askerCompletesMajority(tc.cfg, "l", raft.ServerID(tc.asker)); got != tc.want {
			t.Errorf("%s: askerCompletesMajority = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// openReadQuorumCluster opens size members n1..nsize on one in-memory
// network and returns them with the network and the leader.
func openReadQuorumCluster(t *testing.T, size int) (*transport.Network, []*Node, *Node) {
	t.Helper()
	network := transport.NewNetwork()
	peers := make([]Peer, size)
	for i := range peers {
		id := fmt.Sprintf("n%d", i+1)
		peers[i] = Peer{ID: id, Address: id}
	}
	nodes := make([]*Node, size)
	for i, p := range peers {
		tr, err := network.Join(p.Address)
		if err != nil {
			t.Fatal(err)
		}
		n, err := Open("", WithID(p.ID), WithTransport(tr), WithMemoryStorage(NewMemoryStorage()),
			WithBootstrap(peers...), WithRaftTiming(100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 0))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		t.Cleanup(func() { n.Close() })
	}
	ctx := context.Background()
	for {
		for _, n := range nodes {
			if n.IsLeader() {
				if _, err := n.Put(ctx, []byte("k"), []byte("v")); err != nil {
					t.Fatal(err)
				}
				return network, nodes, n
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// A follower's read-index call in the leader's term is answered at once,
// with the leader's commit index, and without a heartbeat round: here the
// leader is cut off from every follower, so a round could not end, yet the
// call is answered with no virtual time passing. Anything the shortcut
// does not cover (another term, no term, a cluster of five) goes to the
// round, which reaches no other voter and fails (or the call's context
// ends first).
func TestFollowerReadIndexCallNeedsNoHeartbeatRound(t *testing.T) {
	for _, size := range []int{2, 3, 5} {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				network, nodes, leader := openReadQuorumCluster(t, size)
				var follower *Node
				for _, n := range nodes {
					if n != leader {
						follower = n
						break
					}
				}
				// Let every message already on its way arrive first. (With
				// rounds confirmed by raft's VerifyLeader, which counts the
				// answer to a heartbeat sent before it was asked, one in
				// flight at the cut ended the five-member round; the read
				// heartbeats of a round sent after the cut cannot.)
				synctest.Wait()
				term := leader.raft.CurrentTerm()
				commit := leader.raft.CommitIndex()
				network.Isolate(raft.ServerAddress(leader.cfg.id))

				call := func(req *wire.Request) (*wire.Reply, time.Duration) {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
					defer cancel()
					start := time.Now()
					reply := &wire.Reply{}
					leader.serveRPC(ctx, req, reply)
					return reply, time.Since(start)
				}
				reply, took := call(&wire.Request{Kind: wire.RPCReadIndex, From: follower.cfg.id, Term: term})
				if size <= 3 {
					if reply.Err != nil || took != 0 {
						t.Fatalf("the follower's call in term %d: error %v after %v, want an answer at once", term, reply.Err, took)
					}
					if want := leader.lastFSMIndex(commit); reply.Index < want {
						t.Fatalf("the follower's call was answered with index %d, want at least the commit index's %d", reply.Index, want)
					}
				} else if reply.Err == nil {
					t.Fatalf("with %d members the follower's call was answered (index %d) while no heartbeat could reach a follower", size, reply.Index)
				}
				for _, req := range []*wire.Request{
					{Kind: wire.RPCReadIndex}, // an older member's call: no term
					{Kind: wire.RPCReadIndex, From: follower.cfg.id, Term: term + 1}, // another term
					{Kind: wire.RPCReadIndex, From: follower.cfg.id},                 // no term
					{Kind: wire.RPCReadIndex, From: "stranger", Term: term},          // not a member
					{Kind: wire.RPCReadIndex, From: leader.cfg.id, Term: term},       // the leader itself
				} {
					reply, took := call(req)
					if reply.Err == nil {
						t.Errorf("call from %q in term %d (leader's %d) answered with index %d after %v, want it to join a round that cannot confirm the leadership", req.From, req.Term, term, reply.Index, took)
					} else if err := fromWireError(reply.Err); !errors.Is(err, errLeaderNotReady) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
						t.Errorf("call from %q in term %d: %v, want the round's failure to reach a majority, the call's deadline, or not-leader once the cut-off leader stepped down", req.From, req.Term, err)
					}
				}
				network.Heal()
			})
		})
	}
}
