package kvstore_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/testcerts"
	"github.com/kvstore/kvstore/transport"
)

// Three members over TCP with mutual TLS on one registry: the leader and each follower export
// the bytes they sent to and received from each other, labelled To and From with the peer's
// ID, and the leader the round trips of its heartbeats to each follower; the figures grow with
// the traffic. (Two followers need not have talked: an election may not have needed it.)
func TestMetricsPeerNetwork(t *testing.T) {
	ca, err := testcerts.NewCA("peer metrics CA")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"n1", "n2", "n3"}
	var trs []*transport.TCPTransport
	var peers []kvstore.Peer
	for _, id := range ids {
		tc, err := ca.TLSConfig(id)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := transport.NewTCP("", transport.WithListener(ln), transport.WithTLS(tc), transport.WithLocalID(raft.ServerID(id)), transport.WithPeerIDCheck())
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, tr)
		peers = append(peers, kvstore.Peer{ID: id, Address: string(tr.LocalAddr())})
	}
	reg := prometheus.NewRegistry()
	nodes := map[string]*kvstore.Node{}
	for i, id := range ids {
		n, err := kvstore.Open("", kvstore.WithID(id), kvstore.WithTransport(trs[i]), kvstore.WithBootstrap(peers...), kvstore.WithMetrics(reg),
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
	write := func(round int) {
		t.Helper()
		for _, id := range ids { // a follower's write is a Call to the leader
			if _, err := nodes[id].Put(ctx, []byte("k-"+id), fmt.Appendf(nil, "%d", round)); err != nil {
				t.Fatalf("Put through %s: %v", id, err)
			}
		}
	}
	write(0)

	peer := func(fams map[string]*dto.MetricFamily, name, from, label, to string) float64 {
		t.Helper()
		return sample(t, fams, name, map[string]string{"member": from, label: to})
	}
	rttCount := func(fams map[string]*dto.MetricFamily, from, to string) uint64 {
		return uint64(peer(fams, "etcd_network_peer_round_trip_time_seconds", from, "To", to))
	}
	fams := scrape(t, reg)
	for name, typ := range map[string]dto.MetricType{
		"etcd_network_peer_sent_bytes_total":        dto.MetricType_COUNTER,
		"etcd_network_peer_received_bytes_total":    dto.MetricType_COUNTER,
		"etcd_network_peer_round_trip_time_seconds": dto.MetricType_HISTOGRAM,
	} {
		if f := fams[name]; f == nil || f.GetType() != typ || len(f.GetMetric()) < 4 || len(f.GetMetric()) > 6 {
			t.Fatalf("%s: %v, want a %v with a series per member and peer it talked to (4 to 6)", name, f, typ)
		}
	}
	var followers []string
	for _, id := range ids {
		if id != leader {
			followers = append(followers, id)
		}
	}
	for _, f := range followers {
		for _, pair := range [][2]string{{leader, f}, {f, leader}} {
			from, to := pair[0], pair[1]
			if sent := peer(fams, "etcd_network_peer_sent_bytes_total", from, "To", to); sent <= 0 {
				t.Errorf("%s sent %v bytes to %s", from, sent, to)
			}
			if got := peer(fams, "etcd_network_peer_received_bytes_total", from, "From", to); got <= 0 {
				t.Errorf("%s received %v bytes from %s", from, got, to)
			}
		}
	}
	// Heartbeats go every few ms (WithRaftTiming's heartbeat timeout / 10); the leader times
	// those over established connections.
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = scrape(t, reg)
		if rttCount(fams, leader, followers[0]) > 0 && rttCount(fams, leader, followers[1]) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no round trip measured from the leader %s to %v", leader, followers)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f := fams["etcd_network_peer_round_trip_time_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); len(h.GetBucket()) != 14 || h.GetBucket()[0].GetUpperBound() != 0.0001 {
				t.Fatalf("RTT histogram buckets %v, want etcd's 14 from 100 µs", h.GetBucket())
			}
		}
	}

	before := peer(fams, "etcd_network_peer_sent_bytes_total", leader, "To", followers[0])
	beforeRecv := peer(fams, "etcd_network_peer_received_bytes_total", followers[0], "From", leader)
	if _, err := nodes[leader].Put(ctx, []byte("big"), make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	// The put returned once a quorum had it: followers[0] may not be in
	// that quorum, so wait (with a deadline) for the entry to reach it.
	deadline = time.Now().Add(20 * time.Second)
	for {
		fams = scrape(t, reg)
		sent := peer(fams, "etcd_network_peer_sent_bytes_total", leader, "To", followers[0])
		recv := peer(fams, "etcd_network_peer_received_bytes_total", followers[0], "From", leader)
		if sent >= before+100_000 && recv >= beforeRecv+100_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a 100 kB put, the leader's bytes to %s went from %v to %v and %s's from the leader from %v to %v",
				followers[0], before, sent, followers[0], beforeRecv, recv)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
