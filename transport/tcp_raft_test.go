package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// responder answers the raft RPCs arriving at a transport favourably until stopped.
type responder struct {
	atomic.Int64 // RPCs served
	once         sync.Once
	quit, done   chan struct{}
}

func (r *responder) stop() {
	r.once.Do(func() {
		close(r.quit)
		<-r.done
	})
}

// respondAllTCP serves tr's Consumer until stop or the end of the test.
func respondAllTCP(t *testing.T, tr transport.Transport) *responder {
	r := &responder{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			select {
			case rpc := <-tr.Consumer():
				r.Add(1)
				rpc.Respond(favourable(rpc))
			case <-r.quit:
				return
			}
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func TestTCPRaftRPCsDelivered(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	served := respondAllTCP(t, b)
	var ae raft.AppendEntriesResponse
	req := &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 7, Entries: []*raft.Log{{Index: 8, Data: []byte("x")}}}
	if err := a.AppendEntries("b", b.LocalAddr(), req, &ae); err != nil || !ae.Success || ae.Term != 3 || ae.LastLog != 8 {
		t.Fatalf("AppendEntries: %+v, %v", ae, err)
	}
	var rv raft.RequestVoteResponse
	if err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{Term: 4}, &rv); err != nil || !rv.Granted || rv.Term != 4 {
		t.Fatalf("RequestVote: %+v, %v", rv, err)
	}
	var pv raft.RequestPreVoteResponse
	if err := a.RequestPreVote("b", b.LocalAddr(), &raft.RequestPreVoteRequest{Term: 5}, &pv); err != nil || !pv.Granted || pv.Term != 5 {
		t.Fatalf("RequestPreVote: %+v, %v", pv, err)
	}
	var tn raft.TimeoutNowResponse
	if err := a.TimeoutNow("b", b.LocalAddr(), &raft.TimeoutNowRequest{}, &tn); err != nil {
		t.Fatalf("TimeoutNow: %v", err)
	}
	data := bytes.Repeat([]byte("snapshot-"), 100_000)
	var is raft.InstallSnapshotResponse
	if err := a.InstallSnapshot("b", b.LocalAddr(), &raft.InstallSnapshotRequest{Term: 9, Size: int64(len(data))}, &is, bytes.NewReader(data)); err != nil || !is.Success {
		t.Fatalf("InstallSnapshot: %+v, %v", is, err)
	}
	if served.Load() != 5 {
		t.Fatalf("served %d RPCs, want 5", served.Load())
	}
	if got := a.DecodePeer(a.EncodePeer("b", b.LocalAddr())); got != b.LocalAddr() {
		t.Fatalf("DecodePeer(EncodePeer) = %q", got)
	}
}

func TestTCPRaftRPCErrors(t *testing.T) {
	a := newTCP(t, transport.WithRPCTimeout(200*time.Millisecond))
	b := newTCP(t)

	// The peer's raft answers with an error.
	go func() {
		rpc := <-b.Consumer()
		rpc.Respond(&raft.RequestVoteResponse{}, errors.New("boom"))
	}()
	var rv raft.RequestVoteResponse
	err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{}, &rv)
	if err == nil || !strings.Contains(err.Error(), "boom") || errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("error answer: err = %v, want the peer's error", err)
	}

	// Nobody listens.
	addr := raft.ServerAddress(closedAddr(t))
	var ae raft.AppendEntriesResponse
	if err := a.AppendEntries("x", addr, &raft.AppendEntriesRequest{}, &ae); !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), string(addr)) {
		t.Fatalf("no listener: err = %v, want ErrUnreachable naming %s", err, addr)
	}

	// The peer's raft never takes the RPC: the RPC timeout.
	start := time.Now()
	if err := a.AppendEntries("b", b.LocalAddr(), &raft.AppendEntriesRequest{}, &ae); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not consumed: err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("not consumed: failed after %v, want about the 200ms timeout", d)
	}

	// The peer closes while the RPC waits.
	taken := make(chan struct{})
	go func() {
		<-b.Consumer()
		close(taken)
	}()
	errc := make(chan error, 1)
	go func() { errc <- a.AppendEntries("b", b.LocalAddr(), &raft.AppendEntriesRequest{}, &ae) }()
	<-taken
	_ = b.Close()
	if err := <-errc; !errors.Is(err, transport.ErrUnreachable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("peer closed: err = %v, want ErrUnreachable", err)
	}
}

func TestTCPHeartbeatFastPath(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	served := respondAllTCP(t, b)
	var beats atomic.Int64
	b.SetHeartbeatHandler(func(rpc raft.RPC) {
		beats.Add(1)
		rpc.Respond(favourable(rpc))
	})
	var resp raft.AppendEntriesResponse
	hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte(a.LocalAddr())}, Term: 2}
	if err := a.AppendEntries("b", b.LocalAddr(), hb, &resp); err != nil || !resp.Success {
		t.Fatalf("heartbeat: %+v, %v", resp, err)
	}
	full := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{Addr: []byte(a.LocalAddr())}, Term: 2, PrevLogEntry: 1, PrevLogTerm: 1}
	if err := a.AppendEntries("b", b.LocalAddr(), full, &resp); err != nil || !resp.Success {
		t.Fatalf("append: %+v, %v", resp, err)
	}
	if beats.Load() != 1 || served.Load() != 1 {
		t.Fatalf("heartbeat handler ran %d times, consumer %d; want 1 and 1", beats.Load(), served.Load())
	}
}

// tcpNode is one raft server of a TCP test cluster.
type tcpNode struct {
	id    raft.ServerID
	raft  *raft.Raft
	fsm   *listFSM
	trans *transport.TCPTransport
}

// tcpRaftConfig is raft's configuration for a test node: quick timing (loopback), snapshots
// only when the test asks, everything a snapshot covers compacted.
func tcpRaftConfig(id raft.ServerID) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = id
	conf.Logger = hclog.NewNullLogger()
	// Fast, but not so fast that a loaded CI machine under -race changes leaders mid-test (at
	// 100 ms it did: an apply then ends in ErrLeadershipLost, its outcome unknown).
	conf.HeartbeatTimeout = 300 * time.Millisecond
	conf.ElectionTimeout = 300 * time.Millisecond
	conf.LeaderLeaseTimeout = 150 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 1 << 30
	conf.TrailingLogs = 0
	return conf
}

// startTCPNode starts a raft server on tr, bootstrapping it with servers if given.
func startTCPNode(t *testing.T, id raft.ServerID, tr *transport.TCPTransport, servers []raft.Server) *tcpNode {
	t.Helper()
	conf := tcpRaftConfig(id)
	store := raft.NewInmemStore()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 1, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if servers != nil {
		if err := raft.BootstrapCluster(conf, store, store, snaps, tr, raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
	}
	fsm := &listFSM{}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown().Error(); err != nil {
			t.Errorf("shutdown %s: %v", id, err)
		}
	})
	return &tcpNode{id: id, raft: r, fsm: fsm, trans: tr}
}

// startTCPCluster starts one bootstrapped raft server per transport, IDs n1, n2, ...
func startTCPCluster(t *testing.T, trs ...*transport.TCPTransport) []*tcpNode {
	t.Helper()
	var servers []raft.Server
	for i, tr := range trs {
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Address: tr.LocalAddr()})
	}
	var nodes []*tcpNode
	for i, tr := range trs {
		nodes = append(nodes, startTCPNode(t, servers[i].ID, tr, servers))
	}
	return nodes
}

// pollUntil polls cond until it holds, failing the test after timeout.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tcpLeader(t *testing.T, nodes []*tcpNode) *tcpNode {
	t.Helper()
	var leader *tcpNode
	pollUntil(t, 20*time.Second, "an agreed leader", func() bool {
		leader = nil
		for _, nd := range nodes {
			_, id := nd.raft.LeaderWithID()
			i := slices.IndexFunc(nodes, func(m *tcpNode) bool { return m.id == id })
			if i < 0 || (leader != nil && leader != nodes[i]) {
				return false
			}
			leader = nodes[i]
		}
		return leader.raft.State() == raft.Leader
	})
	return leader
}

// onLeader runs op on the current leader, again on the next leader if the leadership moved
// before op took effect (raft.ErrNotLeader: nothing was appended), for up to 20 s.
func onLeader(t *testing.T, nodes []*tcpNode, what string, op func(leader *tcpNode) error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		leader := tcpLeader(t, nodes)
		err := op(leader)
		if err == nil {
			return
		}
		if !errors.Is(err, raft.ErrNotLeader) || time.Now().After(deadline) {
			t.Fatalf("%s on %s: %v", what, leader.id, err)
		}
	}
}

func tcpApply(t *testing.T, nodes []*tcpNode, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		onLeader(t, nodes, fmt.Sprintf("apply %q", c), func(leader *tcpNode) error {
			return leader.raft.Apply([]byte(c), 5*time.Second).Error()
		})
	}
}

func tcpWaitEntries(t *testing.T, nodes []*tcpNode, want []string) {
	t.Helper()
	for _, nd := range nodes {
		pollUntil(t, 20*time.Second, fmt.Sprintf("%s to apply %d entries", nd.id, len(want)), func() bool {
			got, _ := nd.fsm.state()
			return slices.Equal(got, want)
		})
	}
}

// raftClusterOverTCP runs a three-node raft cluster over the transports opts make: it elects a
// leader and replicates; after a snapshot compacts the log, a fourth node added as a voter
// catches up through InstallSnapshot over TCP; a leadership transfer (TimeoutNow) works.
func raftClusterOverTCP(t *testing.T, opts func(id raft.ServerID) []transport.Option) {
	var trs []*transport.TCPTransport
	for i := range 3 {
		trs = append(trs, newTCP(t, opts(raft.ServerID(fmt.Sprintf("n%d", i+1)))...))
	}
	nodes := startTCPCluster(t, trs...)
	want := []string{"a", "b", "c"}
	tcpApply(t, nodes, want...)
	tcpWaitEntries(t, nodes, want)

	// Every member compacts its log, so whoever leads must send the new node a snapshot.
	for _, nd := range nodes {
		if err := nd.raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot on %s: %v", nd.id, err)
		}
	}
	n4 := startTCPNode(t, "n4", newTCP(t, opts("n4")...), nil)
	onLeader(t, nodes, "AddVoter", func(leader *tcpNode) error {
		return leader.raft.AddVoter(n4.id, n4.trans.LocalAddr(), 0, 10*time.Second).Error()
	})
	nodes = append(nodes, n4)
	tcpApply(t, nodes, "d")
	want = append(want, "d")
	tcpWaitEntries(t, nodes, want)
	if _, restores := n4.fsm.state(); restores == 0 {
		t.Fatal("the new node caught up without installing a snapshot")
	}

	onLeader(t, nodes, "leadership transfer", func(leader *tcpNode) error {
		return leader.raft.LeadershipTransfer().Error()
	})
	tcpApply(t, nodes, "e")
	tcpWaitEntries(t, nodes, append(want, "e"))
}

func TestTCPRaftCluster(t *testing.T) {
	raftClusterOverTCP(t, func(raft.ServerID) []transport.Option { return nil })
}

// The InstallSnapshot stream is read by the receiver's raft from the connection itself.
func TestTCPInstallSnapshotStreamsData(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	received := make(chan []byte, 1)
	go func() {
		rpc := <-b.Consumer()
		req := rpc.Command.(*raft.InstallSnapshotRequest)
		got, err := io.ReadAll(rpc.Reader)
		received <- got
		rpc.Respond(&raft.InstallSnapshotResponse{Term: req.Term, Success: err == nil}, err)
	}()
	var resp raft.InstallSnapshotResponse
	req := &raft.InstallSnapshotRequest{Term: 9, Size: int64(len(data))}
	if err := a.InstallSnapshot("b", b.LocalAddr(), req, &resp, bytes.NewReader(data)); err != nil || !resp.Success || resp.Term != 9 {
		t.Fatalf("InstallSnapshot: %+v, %v", resp, err)
	}
	if got := <-received; !bytes.Equal(got, data) {
		t.Fatalf("receiver read %d bytes, want the %d sent", len(got), len(data))
	}
}

// A request of a type NetworkTransport never sends drops the connection, with a warning naming
// it, and reaches nobody; the transport goes on serving raft's RPCs.
func TestTCPRaftUnknownRequestDropsConnection(t *testing.T) {
	logs := &syncBuffer{}
	b := newTCP(t, transport.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	conn, err := net.Dial("tcp", string(b.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The preamble (version 2, raft, no ID), then a request type that does not exist.
	if _, err := conn.Write([]byte("KVT\x02\x01\x00\x7f\x01\x02")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || len(got) != 1 || got[0] != 0 {
		t.Fatalf("read %q, %v; want the preamble's OK byte, then the connection closed", got, err)
	}
	if !strings.Contains(logs.String(), "unknown raft RPC type 127") {
		t.Fatalf("log %q does not name the unknown request", logs.String())
	}

	a := newTCP(t)
	served := respondAllTCP(t, b)
	if err := a.TimeoutNow("b", b.LocalAddr(), &raft.TimeoutNowRequest{}, &raft.TimeoutNowResponse{}); err != nil {
		t.Fatalf("a well-formed request after the bad one: %v", err)
	}
	if served.Load() != 1 {
		t.Fatalf("consumer served %d RPCs, want only the well-formed one", served.Load())
	}
}
