package transport_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/testcerts"
	"github.com/kvstore/kvstore/transport"
)

// kvstoreTiming is the raft timing of the kvstore nodes in these tests.
var kvstoreTiming = kvstore.WithRaftTiming(200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond, 5*time.Millisecond)

// Bootstrap addresses a TCP transport could never dial are refused at Open, before the data dir
// is touched, with an error naming the peer and the reason; so is this node listed at another
// address than its transport's. The same transport then opens with the right peers, and the
// addresses of members to add or to join through are checked too.
func TestTCPKVStoreOpenChecksAddresses(t *testing.T) {
	tr := newTCP(t)
	self := string(tr.LocalAddr())
	dir := t.TempDir()
	refused := func(what string, peers []kvstore.Peer, want ...string) error {
		t.Helper()
		n, err := kvstore.Open(dir, kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithBootstrap(peers...))
		if err == nil {
			n.Close()
			t.Fatalf("%s: Open succeeded", what)
		}
		if !errors.Is(err, kvstore.ErrInvalidOption) || !strings.Contains(err.Error(), "WithBootstrap") {
			t.Errorf("%s: %v, want ErrInvalidOption naming WithBootstrap", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to say %s", what, err, w)
			}
		}
		if entries, rerr := os.ReadDir(dir); rerr != nil || len(entries) != 0 {
			t.Fatalf("%s: the data dir holds %v (%v), want it untouched", what, entries, rerr)
		}
		return err
	}
	for _, bad := range []string{"n1", ":0", "host:99999", ""} {
		err := refused(fmt.Sprintf("peer n2 at %q", bad), []kvstore.Peer{{ID: "n1", Address: self}, {ID: "n2", Address: bad}}, `peer "n2"`, fmt.Sprintf("%q", bad))
		if !errors.Is(err, kvstore.ErrInvalidAddress) {
			t.Errorf("peer n2 at %q: %v, want ErrInvalidAddress", bad, err)
		}
		err = refused(fmt.Sprintf("this node at %q", bad), []kvstore.Peer{{ID: "n1", Address: bad}}, `peer "n1"`, fmt.Sprintf("%q", bad))
		if !errors.Is(err, kvstore.ErrInvalidAddress) {
			t.Errorf("this node at %q: %v, want ErrInvalidAddress", bad, err)
		}
	}
	refused("this node at another address", []kvstore.Peer{{ID: "n1", Address: "127.0.0.1:1"}, {ID: "n2", Address: "127.0.0.1:2"}},
		`"127.0.0.1:1"`, fmt.Sprintf("%q", self))

	n, err := kvstore.Open(dir, kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: self}), kvstoreTiming)
	if err != nil {
		t.Fatalf("Open with this node at its transport's address: %v", err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"n2", "127.0.0.1:0", ""} {
		for name, add := range map[string]func(context.Context, string, string) error{"AddVoter": n.AddVoter, "AddLearner": n.AddLearner} {
			if err := add(ctx, "n2", bad); !errors.Is(err, kvstore.ErrInvalidMember) || !errors.Is(err, kvstore.ErrInvalidAddress) {
				t.Errorf("%s(n2, %q): %v, want ErrInvalidMember and ErrInvalidAddress", name, bad, err)
			}
		}
	}
	if ms, err := n.Members(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("members after refused additions: %+v, %v", ms, err)
	}

	joiner, err := kvstore.Open("", kvstore.WithID("n2"), kvstore.WithTransport(newTCP(t)), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstoreTiming)
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Close()
	if err := joiner.Join(ctx, []string{self, "n1"}); !errors.Is(err, kvstore.ErrInvalidMember) || !errors.Is(err, kvstore.ErrInvalidAddress) || !strings.Contains(err.Error(), `"n1"`) {
		t.Fatalf(`Join through "n1": %v, want ErrInvalidMember and ErrInvalidAddress naming it`, err)
	}
	if ms, err := n.Members(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("members after a refused Join: %+v, %v", ms, err)
	}
}

// Members whose TCP listeners get new ports when they restart (port 0) have the cluster record
// the new addresses, over mutual TLS with the peer identity check: a follower, then the leader,
// then a cluster's only member. Each logs the change once, and is reached again: writes made
// elsewhere reach it, and its own reach the leader.
func TestTCPKVStoreMemberRestartsOnANewPort(t *testing.T) {
	ca := newCA(t, "cluster CA")
	noLeaks(t, func() {
		t.Run("three members", func(t *testing.T) { restartsOnNewPorts(t, ca, 3) })
		t.Run("one member", func(t *testing.T) { restartsOnNewPorts(t, ca, 1) })
	})
}

func restartsOnNewPorts(t *testing.T, ca *testcerts.CA, size int) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ids := []string{"n1", "n2", "n3"}[:size]
	storages, trs, nodes := map[string]*kvstore.MemoryStorage{}, map[string]*transport.TCPTransport{}, map[string]*kvstore.Node{}
	open := func(id string, opts ...kvstore.Option) {
		t.Helper()
		n, err := kvstore.Open("", append([]kvstore.Option{kvstore.WithID(id), kvstore.WithTransport(trs[id]),
			kvstore.WithMemoryStorage(storages[id]), kvstore.WithLogger(logger), kvstoreTiming}, opts...)...)
		if err != nil {
			t.Fatalf("Open %s: %v", id, err)
		}
		nodes[id] = n
	}
	defer func() {
		for id, n := range nodes {
			if err := n.Close(); err != nil {
				t.Errorf("Close %s: %v", id, err)
			}
		}
	}()
	var peers []kvstore.Peer
	for _, id := range ids {
		storages[id], trs[id] = kvstore.NewMemoryStorage(), newTCP(t, withIdentity(t, ca, id)...)
		peers = append(peers, kvstore.Peer{ID: id, Address: string(trs[id].LocalAddr())})
	}
	for _, id := range ids {
		open(id, kvstore.WithBootstrap(peers...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := func() *kvstore.Node {
		t.Helper()
		id, err := nodes[ids[0]].WaitLeader(ctx)
		if err != nil || nodes[id] == nil {
			t.Fatalf("leader %q (%v)", id, err)
		}
		return nodes[id]
	}
	if _, err := leader().Put(ctx, []byte("k"), []byte("before")); err != nil {
		t.Fatal(err)
	}

	var moves []string // the member moved first is a follower, the next the leader
	if size > 1 {
		moves = append(moves, ids[(slices.Index(ids, leader().ID())+1)%size])
	}
	moves = append(moves, leader().ID())
	for round, id := range moves {
		old := string(trs[id].LocalAddr())
		if err := nodes[id].Close(); err != nil {
			t.Fatal(err)
		}
		delete(nodes, id)
		trs[id] = newTCP(t, withIdentity(t, ca, id)...) // a new port-0 listener: a new port
		moved := string(trs[id].LocalAddr())
		open(id)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var got []string
			for _, n := range nodes {
				ms, err := n.Members(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range ms {
					if m.ID == id {
						got = append(got, m.Address)
					}
				}
			}
			if len(got) == len(nodes) && !slices.ContainsFunc(got, func(a string) bool { return a != moved }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s moved from %s to %s; the members record %v\nwarnings:\n%s", id, old, moved, got, logs)
			}
		}
		if msg := fmt.Sprintf("advertised address changed from %s to %s", old, moved); strings.Count(logs.String(), msg) != 1 {
			t.Errorf("warning %q logged %d times, want once; warnings:\n%s", msg, strings.Count(logs.String(), msg), logs)
		}
		val := fmt.Sprint("after move ", round)
		if _, err := leader().Put(ctx, []byte("k"), []byte(val)); err != nil {
			t.Fatal(err)
		}
		// A linearizable read on the moved member waits until it has applied the put, which
		// the leader replicates to it at its new address.
		if got, err := nodes[id].Get(ctx, []byte("k")); err != nil || len(got.KVs) != 1 || string(got.KVs[0].Value) != val {
			t.Fatalf("Get on %s after it moved: %+v, %v", id, got, err)
		}
		if _, err := nodes[id].Put(ctx, []byte("from "+id), []byte(val)); err != nil {
			t.Fatalf("Put through %s after it moved: %v", id, err)
		}
	}
}
