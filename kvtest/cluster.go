// Package kvtest runs real kvstore clusters inside Go tests, as
// net/http/httptest runs real servers.
//
// [NewCluster] starts n members in one process on an in-memory network
// (kvstore's transport.Network), with in-memory storage that survives
// Stop/Restart, and registers a cleanup that closes them, checks that every
// member holds the same data, and checks that no goroutine of the cluster
// is left behind.
//
// # Virtual time
//
// A cluster blocks only on channels and timers, so it runs inside a
// testing/synctest bubble, where raft's heartbeats and elections take no
// wall time: a 3-node cluster test finishes in milliseconds. Create the
// cluster inside the bubble:
//
//	func TestX(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			c := kvtest.NewCluster(t, 3)
//			leader := c.WaitLeader()
//			...
//		})
//	}
//
// On-disk storage ([WithDisk]) does real file I/O. It runs in a bubble too,
// where the I/O takes no virtual time: a slow fsync or a loaded machine
// cannot expire raft's timeouts there (the fast timing below makes a
// connected leader step down in wall time when its followers answer 30 ms
// late), so a test that needs leadership to move only when it injects a
// fault should run on disk in a bubble.
//
// # Faults
//
// Besides Stop/Restart (and Move, which gives a stopped member another
// address for its restart) and the network's Partition, Isolate, Cut and
// Heal, a Cluster injects the faults kvstore's robustness suite uses:
// [Cluster.SetClockOffset] (a member's lease clock jumps),
// [Cluster.SetApplyDelay] (a member applies slowly), [Cluster.CorruptValue]
// and [Cluster.CorruptOnRestart] (a member's in-memory store disagrees
// with the others', for the corruption checks), [Cluster.Snapshot]
// (a forced snapshot that truncates the log), [Cluster.TransferLeader] and
// [Cluster.RemoveAndReAdd].
//
// # Threading
//
// A Cluster's methods are meant for the test goroutine; the nodes they
// return are safe for concurrent use.
package kvtest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// Timeout bounds every wait a Cluster does (for a leader, for members to
// catch up, for goroutines to end). In a synctest bubble it is virtual.
const Timeout = 30 * time.Second

// Cluster is a set of in-process kvstore nodes on one in-memory network.
type Cluster struct {
	t       testing.TB
	cfg     clusterConfig
	network *transport.Network
	members []*member
	// label tags the goroutines the cluster's nodes start, so that the
	// leak check finds them and only them.
	label string
}

type member struct {
	peer    kvstore.Peer
	storage *kvstore.MemoryStorage
	dir     string
	node    *kvstore.Node // nil while stopped
	options []kvstore.Option
	// faults are the member's injected clock offset and apply delay; they
	// outlive restarts (faults.go).
	faults memberFaults
}

type clusterConfig struct {
	nodeOptions     []kvstore.Option
	nodeOptionsByID func(id string) []kvstore.Option
	disk            bool
	logStore        kvstore.LogStore
}

// Option configures a Cluster.
type Option func(*clusterConfig)

// WithNodeOptions adds options to every node's Open (after the cluster's
// own: ID, transport, storage, bootstrap, fast raft timing).
func WithNodeOptions(opts ...kvstore.Option) Option {
	return func(c *clusterConfig) { c.nodeOptions = append(c.nodeOptions, opts...) }
}

// WithNodeOptionsByID adds options(id) to node id's Open, at every start
// (after WithNodeOptions'): for options that differ between nodes, such as
// kvstore.WithMemberName.
func WithNodeOptionsByID(options func(id string) []kvstore.Option) Option {
	return func(c *clusterConfig) { c.nodeOptionsByID = options }
}

// WithDisk stores each node's state in a data dir under t.TempDir() with
// the given log store, fsync and all, instead of in memory.
func WithDisk(kind kvstore.LogStore) Option {
	return func(c *clusterConfig) { c.disk, c.logStore = true, kind }
}

// Raft timing of cluster nodes: fast, so that elections after a fault take
// tens of milliseconds even in real time.
const (
	heartbeat = 50 * time.Millisecond
	election  = 50 * time.Millisecond
	lease     = 25 * time.Millisecond
	commit    = 5 * time.Millisecond
)

// NewCluster starts n bootstrapped nodes, named n1…nN (also their network
// addresses), and registers their shutdown and checks with t.Cleanup. It
// does not wait for a leader; see WaitLeader.
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("kvtest: cluster of %d nodes", n)
	}
	c := &Cluster{t: t, network: transport.NewNetwork()}
	c.label = fmt.Sprintf("%p", c)
	for _, o := range opts {
		o(&c.cfg)
	}
	var peers []kvstore.Peer
	for i := range n {
		id := fmt.Sprint("n", i+1)
		peers = append(peers, kvstore.Peer{ID: id, Address: id})
	}
	for _, p := range peers {
		m := &member{peer: p, storage: kvstore.NewMemoryStorage()}
		if c.cfg.disk {
			m.dir = filepath.Join(t.TempDir(), p.ID)
		}
		c.members = append(c.members, m)
	}
	t.Cleanup(c.cleanup)
	for i := range c.members {
		c.start(i, kvstore.WithBootstrap(peers...))
	}
	return c
}

// start opens member i's node, with extra options.
func (c *Cluster) start(i int, extra ...kvstore.Option) {
	c.t.Helper()
	if err := c.open(i, extra...); err != nil {
		c.t.Fatalf("kvtest: starting %s: %v", c.members[i].peer.ID, err)
	}
}

// open opens member i's node, with extra options.
func (c *Cluster) open(i int, extra ...kvstore.Option) error {
	m := c.members[i]
	var err error
	pprof.Do(context.Background(), pprof.Labels("kvtest", c.label), func(context.Context) {
		var tr *transport.MemTransport
		tr, err = c.network.Join(m.peer.Address)
		if err != nil {
			return
		}
		opts := []kvstore.Option{
			kvstore.WithID(m.peer.ID), kvstore.WithTransport(tr),
			kvstore.WithRaftTiming(heartbeat, election, lease, commit),
			kvstore.WithTestHooks(m.faults.hooks()),
		}
		if c.cfg.disk {
			opts = append(opts, kvstore.WithLogStore(c.cfg.logStore))
		} else {
			opts = append(opts, kvstore.WithMemoryStorage(m.storage))
		}
		opts = append(append(append(opts, extra...), m.options...), c.cfg.nodeOptions...)
		if c.cfg.nodeOptionsByID != nil {
			opts = append(opts, c.cfg.nodeOptionsByID(m.peer.ID)...)
		}
		m.node, err = kvstore.Open(m.dir, opts...)
		if err != nil {
			tr.Close()
		}
	})
	return err
}

// AddNode starts a new, empty node that belongs to no cluster yet, with
// extra options (kept for its restarts), and returns its index. Make it a
// member with [kvstore.Node.Join], or with AddVoter or AddLearner on a
// member, using Address(i) and its ID "n<i+1>".
func (c *Cluster) AddNode(opts ...kvstore.Option) int {
	c.t.Helper()
	id := fmt.Sprint("n", len(c.members)+1)
	m := &member{peer: kvstore.Peer{ID: id, Address: id}, storage: kvstore.NewMemoryStorage(), options: opts}
	if c.cfg.disk {
		m.dir = filepath.Join(c.t.TempDir(), id)
	}
	c.members = append(c.members, m)
	c.start(len(c.members) - 1)
	return len(c.members) - 1
}

// Node returns node i (0-based), nil while it is stopped.
func (c *Cluster) Node(i int) *kvstore.Node { return c.members[i].node }

// Nodes returns the running nodes, leaving out those removed from the
// cluster (see [kvstore.Node.Removed]).
func (c *Cluster) Nodes() []*kvstore.Node {
	var out []*kvstore.Node
	for _, m := range c.members {
		if m.node != nil && !removed(m.node) {
			out = append(out, m.node)
		}
	}
	return out
}

// Index returns the position of node in the cluster, -1 if it is not one
// of its running nodes.
func (c *Cluster) Index(node *kvstore.Node) int {
	for i, m := range c.members {
		if m.node == node && node != nil {
			return i
		}
	}
	return -1
}

// ID returns node i's member ID.
func (c *Cluster) ID(i int) string { return c.members[i].peer.ID }

// Address returns node i's network address: its ID, unless Move changed
// it.
func (c *Cluster) Address(i int) string { return c.members[i].peer.Address }

// WaitLeader waits until the cluster has a leader and returns it. The
// leader is the running member L that
//
//   - reports itself leader and ready ([kvstore.Node.IsLeader]), in raft
//     term T, and
//   - is acknowledged by a majority of the voters of its own latest
//     configuration ([kvstore.Node.Members]), itself included, where a
//     voter acknowledges L if it is a running member of this Cluster that
//     names L as leader in term T ([kvstore.Node.Status]) and, unless it
//     is L, the cluster's injected faults (Partition, Isolate, Cut) let
//     messages through between it and L in both directions.
//
// So a leader that has been cut off, or left in a minority, and still
// believes it leads is not returned: WaitLeader waits for the leader the
// majority side elects. At most one member can qualify at a time, as two
// majorities share a voter and a voter has one term. Members outside the
// acknowledging majority (cut off, lagging, learners, nodes not yet
// joined) may not know the leader yet. It fails the test after Timeout.
func (c *Cluster) WaitLeader() *kvstore.Node {
	c.t.Helper()
	var leader *kvstore.Node
	c.poll(func() string { return "a leader acknowledged by a majority" }, func() bool {
		leader = c.leader()
		return leader != nil
	})
	return leader
}

// Followers waits for the leader (see WaitLeader) and returns the running
// nodes other than it, cut off or not.
func (c *Cluster) Followers() []*kvstore.Node {
	c.t.Helper()
	leader := c.WaitLeader()
	var out []*kvstore.Node
	for _, n := range c.Nodes() {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// leader returns the member that is the leader now by WaitLeader's
// definition, nil if there is none.
func (c *Cluster) leader() *kvstore.Node {
	for _, m := range c.members {
		if m.node != nil && !removed(m.node) && c.acknowledged(m) {
			return m.node
		}
	}
	return nil
}

// acknowledged reports whether member l leads and a majority of its
// voters acknowledge it, as WaitLeader defines.
func (c *Cluster) acknowledged(l *member) bool {
	st := l.node.Status()
	if !st.IsLeader {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	servers, err := l.node.Members(ctx)
	if err != nil {
		return false
	}
	voters, acks := 0, 0
	for _, s := range servers {
		if s.Learner {
			continue
		}
		voters++
		m := c.member(s.ID)
		if m == nil || m.node == nil || removed(m.node) || !c.connected(l, m) {
			continue
		}
		if v := m.node.Status(); v.LeaderID == l.peer.ID && v.RaftTerm == st.RaftTerm {
			acks++
		}
	}
	return acks > voters/2
}

// member returns the member with the given ID, nil if there is none.
func (c *Cluster) member(id string) *member {
	for _, m := range c.members {
		if m.peer.ID == id {
			return m
		}
	}
	return nil
}

// connected reports whether the injected network faults let messages
// through between members a and b, both ways; a member is connected to
// itself.
func (c *Cluster) connected(a, b *member) bool {
	if a == b {
		return true
	}
	x, y := raft.ServerAddress(a.peer.Address), raft.ServerAddress(b.peer.Address)
	return !c.network.Blocked(x, y) && !c.network.Blocked(y, x)
}

// WaitApplied waits until every running node has applied every write
// acknowledged before the call: it makes a linearizable read on each,
// which waits for exactly that.
func (c *Cluster) WaitApplied() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for _, n := range c.Nodes() {
		if _, err := n.Get(ctx, []byte{0}, kvstore.WithCountOnly()); err != nil {
			c.t.Fatalf("kvtest: waiting for %s to apply: %v", n.ID(), err)
		}
	}
}

// Partition splits the network into groups of node indexes; nodes in
// different groups (or in none) cannot reach each other until Heal.
func (c *Cluster) Partition(groups ...[]int) {
	var addrs [][]raft.ServerAddress
	for _, g := range groups {
		var a []raft.ServerAddress
		for _, i := range g {
			a = append(a, raft.ServerAddress(c.members[i].peer.Address))
		}
		addrs = append(addrs, a)
	}
	c.network.Partition(addrs...)
}

// Isolate cuts node i off from every other node.
func (c *Cluster) Isolate(i int) {
	c.network.Isolate(raft.ServerAddress(c.members[i].peer.Address))
}

// Cut drops the messages from node i to node j (one way) until Heal.
func (c *Cluster) Cut(i, j int) {
	c.network.Cut(raft.ServerAddress(c.members[i].peer.Address), raft.ServerAddress(c.members[j].peer.Address))
}

// Heal removes every partition and cut.
func (c *Cluster) Heal() { c.network.Heal() }

// Stop closes node i, keeping its state for Restart.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	m := c.members[i]
	if m.node == nil {
		c.t.Fatalf("kvtest: %s is already stopped", m.peer.ID)
	}
	if err := m.node.Close(); err != nil {
		c.t.Errorf("kvtest: closing %s: %v", m.peer.ID, err)
	}
	m.node = nil
}

// Restart reopens a stopped node i from its state.
func (c *Cluster) Restart(i int) *kvstore.Node {
	c.t.Helper()
	if c.members[i].node != nil {
		c.t.Fatalf("kvtest: %s is running", c.members[i].peer.ID)
	}
	c.start(i)
	return c.members[i].node
}

// Move gives stopped node i another network address, at which its next
// Restart joins the network, as an operator moving a member to another
// host does. The cluster records the old address until the restarted
// member has had the new one recorded (see kvstore.Open). Faults belong to
// addresses: those of the old one stay there, and new ones for node i
// (Cut, Isolate, ...) concern addr.
func (c *Cluster) Move(i int, addr string) {
	c.t.Helper()
	if c.members[i].node != nil {
		c.t.Fatalf("kvtest: %s is running", c.members[i].peer.ID)
	}
	c.members[i].peer.Address = addr
}

// TryRestart reopens a stopped node i from its state, as Restart does, but
// returns Open's error instead of failing the test: for tests of what
// Open refuses.
func (c *Cluster) TryRestart(i int) (*kvstore.Node, error) {
	c.t.Helper()
	if c.members[i].node != nil {
		c.t.Fatalf("kvtest: %s is running", c.members[i].peer.ID)
	}
	if err := c.open(i); err != nil {
		return nil, err
	}
	return c.members[i].node, nil
}

// removed reports whether n has learned that it was removed.
func removed(n *kvstore.Node) bool {
	select {
	case <-n.Removed():
		return true
	default:
		return false
	}
}

// poll checks cond until it holds or Timeout passes.
func (c *Cluster) poll(what func() string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("kvtest: timed out waiting for %s", what())
		}
		time.Sleep(time.Millisecond)
	}
}

// cleanup checks that the running members agree, closes them and checks
// for leaked goroutines.
func (c *Cluster) cleanup() {
	if !c.t.Failed() {
		c.checkAgreement()
	}
	for _, m := range c.members {
		if m.node != nil {
			if err := m.node.Close(); err != nil {
				c.t.Errorf("kvtest: closing %s: %v", m.peer.ID, err)
			}
			m.node = nil
		}
	}
	c.checkGoroutines()
}

// checkAgreement waits for the running members to reach the same revision
// and compact revision and compares their hashes there. A member that knows
// it was removed is left out; members cut off from the rest are left out of
// the wait only by failing the test: heal before the test ends.
func (c *Cluster) checkAgreement() {
	c.t.Helper()
	var nodes []*kvstore.Node
	for _, n := range c.Nodes() {
		select {
		case <-n.Removed(): // out of the cluster: nothing to agree on
		default:
			nodes = append(nodes, n)
		}
	}
	if len(nodes) < 2 {
		return
	}
	var rev int64
	deadline := time.Now().Add(Timeout)
	for {
		st := nodes[0].Status()
		rev = st.Revision
		same := true
		for _, n := range nodes[1:] {
			other := n.Status()
			same = same && other.Revision == rev && other.CompactRevision == st.CompactRevision
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			c.t.Errorf("kvtest: members did not converge to one revision")
			return
		}
		time.Sleep(time.Millisecond)
	}
	c.checkLeases(nodes)
	var want *kvstore.HashKVResponse
	for _, n := range nodes {
		got, err := n.HashKV(rev)
		if err != nil {
			c.t.Errorf("kvtest: hash of %s: %v", n.ID(), err)
			return
		}
		if want == nil {
			want = got
		} else if got.Hash != want.Hash || got.CompactRevision != want.CompactRevision {
			c.t.Errorf("kvtest: %s and %s disagree at revision %d: hash %08x/%08x, compact revision %d/%d",
				nodes[0].ID(), n.ID(), rev, want.Hash, got.Hash, want.CompactRevision, got.CompactRevision)
		}
	}
}

// checkLeases compares the members' lease sets.
func (c *Cluster) checkLeases(nodes []*kvstore.Node) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var want []int64
	for i, n := range nodes {
		got, err := n.Leases(ctx)
		if err != nil {
			c.t.Errorf("kvtest: leases of %s: %v", n.ID(), err)
			return
		}
		if i == 0 {
			want = got.IDs
		} else if fmt.Sprint(got.IDs) != fmt.Sprint(want) {
			c.t.Errorf("kvtest: %s and %s disagree on leases: %v / %v", nodes[0].ID(), n.ID(), want, got.IDs)
		}
	}
}

// checkGoroutines waits for the goroutines labelled with the cluster's
// label to end, and reports those that do not.
func (c *Cluster) checkGoroutines() {
	c.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		stacks := c.labelledGoroutines()
		if stacks == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Errorf("kvtest: goroutines left behind by the cluster:\n%s", stacks)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// labelledGoroutines returns the stacks of live goroutines carrying the
// cluster's label, empty if there are none.
func (c *Cluster) labelledGoroutines() string {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	want := fmt.Sprintf("%q:%q", "kvtest", c.label)
	var out []string
	for _, group := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(group, "# labels:") && strings.Contains(group, want) {
			out = append(out, group)
		}
	}
	return strings.Join(out, "\n\n")
}
