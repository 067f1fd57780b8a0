package transport_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// eventually polls cond for up to 10 s. A transport counts what it wrote once its write
// returned, which may be after the peer read it and answered: a count can trail the round
// trip that caused it by a moment.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// onlyPeer returns tr's entry for the peer with id, failing unless there is exactly one entry.
func onlyPeer(t *testing.T, tr *transport.TCPTransport, id raft.ServerID) transport.PeerStat {
	t.Helper()
	stats := tr.PeerStats()
	if len(stats) != 1 || stats[0].ID != id {
		t.Fatalf("%s: PeerStats %+v, want one entry for %s", tr.LocalAddr(), stats, id)
	}
	return stats[0]
}

// Over mutual TLS with identity checks, each side accounts the traffic under the other's ID:
// raft's RPCs and Calls (one dialled without an ID is put under the ID learnt for its address),
// in both directions, with the bytes one side sent being the bytes the other received. Only
// heartbeats over an established connection are round trips.
func TestTCPPeerStats(t *testing.T) {
	ca := newCA(t, "peer stats CA")
	a := newTCP(t, withIdentity(t, ca, "a")...)
	b := newTCP(t, withIdentity(t, ca, "b")...)
	respondAllTCP(t, b)
	serveEcho(b)
	if stats := a.PeerStats(); len(stats) != 0 {
		t.Fatalf("PeerStats before any traffic: %+v", stats)
	}

	heartbeat := func() {
		t.Helper()
		var resp raft.AppendEntriesResponse
		req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("a"), Addr: []byte(a.LocalAddr())}, Term: 2}
		if err := a.AppendEntries("b", b.LocalAddr(), req, &resp); err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
	}
	heartbeat() // dials: not a round trip
	eventually(t, "the first heartbeat to be counted", func() bool { return onlyPeer(t, a, "b").SentBytes > 0 })
	if got := onlyPeer(t, a, "b"); got.RTT.Count != 0 || got.ReceivedBytes == 0 || got.Addr != b.LocalAddr() {
		t.Fatalf("after the first heartbeat (which dialled): %+v", got)
	}
	heartbeat()
	heartbeat()
	var resp raft.AppendEntriesResponse
	entries := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("a")}, Term: 2, Entries: []*raft.Log{{Index: 1, Data: make([]byte, 10_000)}}}
	if err := a.AppendEntries("b", b.LocalAddr(), entries, &resp); err != nil {
		t.Fatalf("AppendEntries with entries: %v", err)
	}
	eventually(t, "the append to be counted", func() bool { return onlyPeer(t, a, "b").SentBytes > 10_000 })
	before := onlyPeer(t, a, "b")
	if before.RTT.Count != 2 || before.RTT.Sum <= 0 {
		t.Fatalf("after two more heartbeats and an append of 10 kB: %+v", before)
	}
	if last := before.RTT.Buckets[len(before.RTT.Buckets)-1]; last != 2 {
		t.Fatalf("RTT buckets %v: the last (%v) holds %d round trips on loopback, want 2", before.RTT.Buckets, transport.RTTBuckets()[len(before.RTT.Buckets)-1], last)
	}

	reply, err := a.Call(context.Background(), "", b.LocalAddr(), make([]byte, 5000))
	if err != nil || len(reply) == 0 {
		t.Fatalf("Call: %d bytes, %v", len(reply), err)
	}
	eventually(t, "the Call to be counted", func() bool { return onlyPeer(t, a, "b").SentBytes > before.SentBytes+5000 })
	after := onlyPeer(t, a, "b")
	if after.ReceivedBytes < before.ReceivedBytes+5000 {
		t.Fatalf("a Call of 5000 bytes echoed: before %+v, after %+v", before, after)
	}

	// b counts a's traffic under the ID a stated (and its certificate names), from a's host:
	// what one sent, the other received.
	eventually(t, "b's counts to match a's", func() bool {
		got := onlyPeer(t, b, "a")
		return got.ReceivedBytes == after.SentBytes && got.SentBytes == after.ReceivedBytes
	})
	if got := onlyPeer(t, b, "a"); got.Addr != "127.0.0.1" || got.RTT.Count != 0 {
		t.Fatalf("b's entry for a: %+v, want the address 127.0.0.1 and no round trips (b sent no heartbeat)", got)
	}
}

// Without an ID known on either side (no WithLocalID), a dialled peer is accounted under the
// address dialled and an accepting one under the host the connection came from.
func TestTCPPeerStatsWithoutIDs(t *testing.T) {
	a, b := newTCP(t), newTCP(t)
	serveEcho(b)
	callEcho(t, a, b)
	eventually(t, "the Call to be counted", func() bool {
		stats := a.PeerStats()
		return len(stats) == 1 && stats[0].SentBytes > 0
	})
	if stats := a.PeerStats(); len(stats) != 1 || stats[0].ID != "" || stats[0].Addr != b.LocalAddr() || stats[0].ReceivedBytes == 0 {
		t.Fatalf("a's PeerStats: %+v, want one entry for %s", stats, b.LocalAddr())
	}
	if stats := b.PeerStats(); len(stats) != 1 || stats[0].ID != "" || stats[0].Addr != "127.0.0.1" || stats[0].ReceivedBytes == 0 {
		t.Fatalf("b's PeerStats: %+v, want one entry for 127.0.0.1", stats)
	}
}
