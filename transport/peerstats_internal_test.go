package transport

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Round trips land in the first bucket whose bound they do not exceed; the buckets a snapshot
// reports are cumulative, and one over the last bound counts in Count and Sum only.
func TestRTTBuckets(t *testing.T) {
	bounds := RTTBuckets()
	if len(bounds) != 14 || bounds[0] != 100*time.Microsecond || bounds[13] != 100*time.Microsecond<<13 {
		t.Fatalf("RTTBuckets() = %v, want etcd's 100 µs doubling 14 times", bounds)
	}
	var p peerCounters
	for _, d := range []time.Duration{0, 100 * time.Microsecond, 101 * time.Microsecond, 3 * time.Millisecond, 2 * time.Second} {
		p.observeRTT(d)
	}
	s := p.stat()
	want := []uint64{2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4} // 3 ms ≤ 3.2 ms, bucket 5
	if !slices.Equal(s.RTT.Buckets, want) || s.RTT.Count != 5 {
		t.Fatalf("buckets %v count %d, want %v and 5", s.RTT.Buckets, s.RTT.Count, want)
	}
	if wantSum := 201*time.Microsecond + 3*time.Millisecond + 2*time.Second; s.RTT.Sum != wantSum {
		t.Fatalf("sum %v, want %v", s.RTT.Sum, wantSum)
	}
}

// The table names a peer by its ID once one dial told it (later dials of the address without
// an ID count there too), and stops adding peers at its bound, counting nothing for them.
func TestPeerTable(t *testing.T) {
	var pt peerTable
	byAddr := pt.dialled("", "10.0.0.1:7000")
	byID := pt.dialled("n1", "10.0.0.1:7000")
	if byAddr == byID || pt.dialled("", "10.0.0.1:7000") != byID || pt.byID("n1") != byID {
		t.Fatal("a dial without an ID after one with it is not counted under the ID")
	}
	from := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 53211}
	if pt.accepted("n2", from) != pt.accepted("n2", &net.TCPAddr{IP: from.IP, Port: 40000}) {
		t.Fatal("two connections of n2 counted apart")
	}
	if pt.accepted("", from) == pt.accepted("n2", from) {
		t.Fatal("a connection stating no ID counted under n2")
	}
	stats := pt.stats()
	var names []string
	for _, s := range stats {
		names = append(names, fmt.Sprintf("%s@%s", s.ID, s.Addr))
	}
	if want := []string{"@10.0.0.1:7000", "@10.0.0.2", "n1@10.0.0.1:7000", "n2@10.0.0.2"}; !slices.Equal(names, want) {
		t.Fatalf("stats name %v, want %v", names, want)
	}
	for i := len(stats); i < maxPeerStats; i++ {
		if pt.dialled(raft.ServerID(fmt.Sprint("m", i)), "10.0.0.9:7000") == nil {
			t.Fatalf("peer %d refused below the bound", i)
		}
	}
	p := pt.dialled("late", "10.0.0.9:7000")
	if p != nil {
		t.Fatal("a peer past the bound was accounted for")
	}
	p.countSent(1) // a nil account counts nothing, without failing
	p.observeRTT(time.Millisecond)
	if pt.byID("n1") == nil || len(pt.stats()) != maxPeerStats {
		t.Fatalf("%d entries, want %d", len(pt.stats()), maxPeerStats)
	}
}
