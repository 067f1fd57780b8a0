package kvstore

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// TestSoleVoterLeadsAtOnce opens a one-member cluster, fresh and then
// restarted on its state, in virtual time: each time it must lead, and
// serve a linearizable read of what it held, well within one heartbeat
// timeout, where raft alone waits one to two of them before campaigning.
// Afterwards raft runs with the configured timeouts again.
func TestSoleVoterLeadsAtOnce(t *testing.T) {
	const heartbeat = time.Second
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		network := transport.NewNetwork()
		storage := NewMemoryStorage()
		open := func(t *testing.T) *Node {
			t.Helper()
			tr, err := network.Join("n1")
			if err != nil {
				t.Fatal(err)
			}
			n, err := Open("", WithID("n1"), WithTransport(tr), WithMemoryStorage(storage),
				WithBootstrap(Peer{ID: "n1", Address: "n1"}),
				WithRaftTiming(heartbeat, heartbeat, heartbeat/2, 0))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		for round := range 3 {
			start := time.Now()
			n := open(t)
			if _, err := n.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			resp, err := n.Get(ctx, []byte("k/"), WithPrefix(), WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took >= heartbeat/2 {
				t.Errorf("round %d: led and served after %v, want under %v", round, took, heartbeat/2)
			}
			if resp.Count != int64(round) {
				t.Errorf("round %d: %d keys, want %d", round, resp.Count, round)
			}
			if got := n.raft.ReloadableConfig().HeartbeatTimeout; got != heartbeat {
				t.Errorf("round %d: raft's heartbeat timeout is %v, want the configured %v", round, got, heartbeat)
			}
			if _, err := n.Put(ctx, fmt.Appendf(nil, "k/%d", round), []byte("v")); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestSoleVoter: only a configuration whose one voter is this member
// lets it campaign at once; learners do not vote.
func TestSoleVoter(t *testing.T) {
	voter := func(id string) raft.Server { return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id)} }
	learner := func(id string) raft.Server { return raft.Server{Suffrage: raft.Nonvoter, ID: raft.ServerID(id)} }
	for _, tc := range []struct {
		name    string
		servers []raft.Server
		want    bool
	}{
		{"empty", nil, false},
		{"self alone", []raft.Server{voter("n1")}, true},
		{"self and a learner", []raft.Server{voter("n1"), learner("n2")}, true},
		{"another alone", []raft.Server{voter("n2")}, false},
		{"self a learner of another", []raft.Server{learner("n1"), voter("n2")}, false},
		{"two voters", []raft.Server{voter("n1"), voter("n2")}, false},
		{"three voters", []raft.Server{voter("n1"), voter("n2"), voter("n3")}, false},
	} {
		if got := soleVoter(raft.Configuration{Servers: tc.servers}, "n1"); got != tc.want {
			t.Errorf("%s: soleVoter = %v, want %v", tc.name, got, tc.want)
		}
	}
}
