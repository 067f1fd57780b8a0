package transport_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/testcerts"
	"github.com/kvstore/kvstore/transport"
)

// Three kvstore nodes over mutual TLS with the peer identity check: writes through every member
// (a follower's are forwarded to the leader as Calls, with the leader's ID) and linearizable
// reads on every member (a follower's read index is a Call too).
// Closing the nodes (raft closes their transports) leaves no goroutine behind.
func TestTCPKVStoreCluster(t *testing.T) {
	ca := newCA(t, "cluster CA")
	noLeaks(t, func() { kvstoreCluster(t, ca) })
}

func kvstoreCluster(t *testing.T, ca *testcerts.CA) {
	ids := []string{"n1", "n2", "n3"}
	var trs []*transport.TCPTransport
	var peers []kvstore.Peer
	for _, id := range ids {
		tr := newTCP(t, withFilesTLS(t, ca, id), transport.WithLocalID(raft.ServerID(id)), transport.WithPeerIDCheck())
		trs = append(trs, tr)
		peers = append(peers, kvstore.Peer{ID: id, Address: string(tr.LocalAddr())})
	}
	var nodes []*kvstore.Node
	for i, id := range ids {
		n, err := kvstore.Open("", kvstore.WithID(id), kvstore.WithTransport(trs[i]), kvstore.WithBootstrap(peers...),
			kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstore.WithRaftTiming(200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond, 5*time.Millisecond))
		if err != nil {
			t.Fatalf("Open %s: %v", id, err)
		}
		nodes = append(nodes, n)
	}
	defer func() {
		for i, n := range nodes {
			if err := n.Close(); err != nil {
				t.Errorf("Close %s: %v", ids[i], err)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := nodes[0].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for i, n := range nodes {
			key, val := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d-%d", i, round)
			if _, err := n.Put(ctx, []byte(key), []byte(val)); err != nil {
				t.Fatalf("Put through %s: %v", ids[i], err)
			}
			for j, m := range nodes {
				got, err := m.Get(ctx, []byte(key))
				if err != nil || len(got.KVs) != 1 || string(got.KVs[0].Value) != val {
					t.Fatalf("Get %s on %s after a put through %s: %+v, %v", key, ids[j], ids[i], got, err)
				}
			}
		}
	}
}

// Over TCP, a follower whose leader closed has its dial refused: the write
// was not sent, so the follower waits for the next leader and forwards it
// there within the request's deadline, rather than reporting an unknown
// outcome.
func TestTCPKVStoreForwardAfterLeaderCloses(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	var trs []*transport.TCPTransport
	var peers []kvstore.Peer
	for _, id := range ids {
		tr := newTCP(t, transport.WithLocalID(raft.ServerID(id)))
		trs = append(trs, tr)
		peers = append(peers, kvstore.Peer{ID: id, Address: string(tr.LocalAddr())})
	}
	nodes := map[string]*kvstore.Node{}
	for i, id := range ids {
		n, err := kvstore.Open("", kvstore.WithID(id), kvstore.WithTransport(trs[i]), kvstore.WithBootstrap(peers...),
			kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstore.WithRaftTiming(200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond, 5*time.Millisecond))
		if err != nil {
			t.Fatalf("Open %s: %v", id, err)
		}
		nodes[id] = n
		t.Cleanup(func() { _ = n.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, err := nodes["n1"].WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[leader].Close(); err != nil {
		t.Fatal(err)
	}
	for id, n := range nodes {
		if id == leader {
			continue
		}
		// Neither follower has called the old leader yet: its first
		// forward dials, and the dial is refused.
		if _, err := n.Put(ctx, []byte("k-"+id), []byte("v")); err != nil {
			t.Fatalf("put through %s after the leader %s closed: %v", id, leader, err)
		}
	}
}
