package transport_test

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// listFSM is a trivial FSM: the list of applied commands.
type listFSM struct {
	mu       sync.Mutex
	entries  []string
	restores int
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, string(l.Data))
	return len(f.entries)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return listSnapshot(slices.Clone(f.entries)), nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var entries []string
	if err := json.NewDecoder(rc).Decode(&entries); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = entries
	f.restores++
	return nil
}

func (f *listFSM) state() (entries []string, restores int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries), f.restores
}

type listSnapshot []string

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

// node is one raft server of a test cluster.
type node struct {
	addr  raft.ServerAddress
	raft  *raft.Raft
	fsm   *listFSM
	trans *transport.MemTransport
}

// startCluster bootstraps and starts a raft cluster with one node per address, all on n. Every
// node is shut down when the test ends.
func startCluster(t *testing.T, n *transport.Network, addrs ...raft.ServerAddress) []*node {
	t.Helper()
	var servers []raft.Server
	for _, a := range addrs {
		servers = append(servers, raft.Server{ID: raft.ServerID(a), Address: a})
	}
	var nodes []*node
	for _, a := range addrs {
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(a)
		conf.Logger = hclog.NewNullLogger()
		conf.SnapshotThreshold = 1 << 30 // snapshots only when the test asks
		conf.TrailingLogs = 0            // compact everything a snapshot covers

		store := raft.NewInmemStore()
		snaps, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 1, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		trans := join(t, n, a)
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		fsm := &listFSM{}
		r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &node{addr: a, raft: r, fsm: fsm, trans: trans})
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			if err := nd.raft.Shutdown().Error(); err != nil {
				t.Errorf("shutdown %s: %v", nd.addr, err)
			}
		}
	})
	return nodes
}

// agreedLeader returns the leader all of nodes acknowledge, if they agree on one that is among
// them and considers itself leader.
func agreedLeader(nodes []*node) (*node, bool) {
	var leader *node
	for _, nd := range nodes {
		addr, _ := nd.raft.LeaderWithID()
		if addr == "" {
			return nil, false
		}
		i := slices.IndexFunc(nodes, func(m *node) bool { return m.addr == addr })
		if i < 0 || (leader != nil && leader != nodes[i]) {
			return nil, false
		}
		leader = nodes[i]
	}
	return leader, leader != nil && leader.raft.State() == raft.Leader
}

func waitLeader(t *testing.T, nodes []*node) *node {
	t.Helper()
	var leader *node
	waitFor(t, 30*time.Second, "an agreed leader", func() bool {
		var ok bool
		leader, ok = agreedLeader(nodes)
		return ok
	})
	return leader
}

func waitEntries(t *testing.T, nodes []*node, want []string) {
	t.Helper()
	for _, nd := range nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("%s to apply %q", nd.addr, want), func() bool {
			got, _ := nd.fsm.state()
			return slices.Equal(got, want)
		})
	}
}

func apply(t *testing.T, leader *node, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if err := leader.raft.Apply([]byte(c), 5*time.Second).Error(); err != nil {
			t.Fatalf("apply %q on %s: %v", c, leader.addr, err)
		}
	}
}

// A three-node raft cluster on MemTransports elects a leader and replicates; when the leader is
// isolated the other two elect a new one and carry on; after healing, the old leader follows
// the new one and catches up, through InstallSnapshot since the log it misses is compacted.
func TestRaftClusterSurvivesIsolatedLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		nodes := startCluster(t, n, "n1", "n2", "n3")

		start := time.Now()
		leader := waitLeader(t, nodes)
		t.Logf("%v: %s leads", time.Since(start), leader.addr)
		apply(t, leader, "a", "b", "c")
		waitEntries(t, nodes, []string{"a", "b", "c"})

		old := leader
		n.Isolate(old.addr)
		rest := slices.DeleteFunc(slices.Clone(nodes), func(nd *node) bool { return nd == old })
		leader = waitLeader(t, rest)
		t.Logf("%v: %s isolated, %s leads the rest", time.Since(start), old.addr, leader.addr)
		waitFor(t, 30*time.Second, "the isolated leader to step down", func() bool {
			return old.raft.State() != raft.Leader
		})

		apply(t, leader, "d", "e")
		waitEntries(t, rest, []string{"a", "b", "c", "d", "e"})
		if err := leader.raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		apply(t, leader, "f")
		if got, _ := old.fsm.state(); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("isolated node applied %q while cut off", got)
		}

		n.Heal()
		want := []string{"a", "b", "c", "d", "e", "f"}
		waitEntries(t, nodes, want)
		leader = waitLeader(t, nodes) // all three follow one leader again
		t.Logf("%v: healed, %s caught up, %s leads", time.Since(start), old.addr, leader.addr)
		if _, restores := old.fsm.state(); restores == 0 {
			t.Fatal("old leader caught up without installing a snapshot")
		}
		apply(t, leader, "g")
		waitEntries(t, nodes, append(want, "g"))
	})
}
