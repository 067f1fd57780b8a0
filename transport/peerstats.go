package transport

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// PeerStatsReporter is implemented by a transport that accounts its traffic per peer. It is
// optional: a node asks its transport for it with a type assertion and exports no per-peer
// network metrics when the transport does not implement it, so a Transport written outside this
// package need not. [TCPTransport] implements it; [MemTransport] does not (its messages are
// passed by pointer and have no size on a wire).
type PeerStatsReporter interface {
	// PeerStats returns the counters of every peer the transport has exchanged traffic with
	// since it was created, sorted by ID, then address. It is safe for concurrent use with
	// everything else and never blocks on the network; the slice is the caller's.
	PeerStats() []PeerStat
}

// PeerStat is one peer's traffic as a transport counted it. Counters only grow; a peer's
// entry stays after its connections close.
type PeerStat struct {
	// ID is the peer's raft server ID, when the transport knows it: the ID raft or the caller
	// named when dialling, or the one the peer stated when it connected (authenticated under
	// WithPeerIDCheck, taken at its word otherwise). Empty when unknown; Addr then names the
	// peer.
	ID raft.ServerID
	// Addr is the address the transport last dialled the peer at; for a peer that only
	// connected to this transport, the host it connected from (an inbound connection's port
	// is the peer's ephemeral one, which names nothing). Empty for a peer known by ID that
	// never was dialled and connected from a host already seen.
	Addr raft.ServerAddress
	// SentBytes and ReceivedBytes count the bytes of the transport's protocols (raft's RPCs
	// and their responses, Call frames) written to and read from the peer's connections once
	// they were set up: neither the TLS handshake and record overhead nor the connection
	// preamble is counted.
	SentBytes, ReceivedBytes uint64
	// RTT is the distribution of round trips measured to the peer (see [RTTBuckets]).
	RTT RTTHistogram
}

// RTTHistogram is a distribution of round-trip times with the bucket bounds of [RTTBuckets].
//
// Over TCP a round trip is one of raft's AppendEntries RPCs that carries no entries (a
// heartbeat, or a leader's probe of a follower's log), from writing the request to reading the
// response. A follower answers those without touching its disk, so the time is the network's
// and the two transports' (raft answers heartbeats on a fast path, off its main loop). A round
// trip during which the transport dialled the peer is left out: it would time the dial. Only a
// leader sends them: a follower measures no round trips.
type RTTHistogram struct {
	// Count is the number of round trips measured; Sum their total time.
	Count uint64
	Sum   time.Duration
	// Buckets[i] is the number of round trips that took at most RTTBuckets()[i] (cumulative,
	// as Prometheus' histograms count). Round trips above the last bound count only in Count.
	Buckets []uint64
}

// RTTBuckets returns the upper bounds of the buckets of an [RTTHistogram]: etcd's layout for
// etcd_network_peer_round_trip_time_seconds, from 100 µs doubling to about 0.82 s.
func RTTBuckets() []time.Duration {
	b := make([]time.Duration, rttBucketCount)
	for i := range b {
		b[i] = rttFirstBucket << i
	}
	return b
}

const (
	rttFirstBucket = 100 * time.Microsecond
	rttBucketCount = 14
	// maxPeerStats bounds how many peers a transport accounts for, so that connections from
	// ever new hosts (a port scan, a peer without WithLocalID behind changing addresses)
	// cannot grow the table, and the label set of the metrics built on it, without bound.
	// Traffic of peers beyond it is not counted.
	maxPeerStats = 1024
)

// peerCounters is the account of one peer. Its fields are updated with atomic adds on the
// connections' goroutines; nothing on the traffic path takes a lock.
type peerCounters struct {
	id          raft.ServerID
	addr        atomic.Pointer[raft.ServerAddress]
	sent, recvd atomic.Uint64
	dials       atomic.Uint64 // connections dialled to the peer, counted before their handshake
	rttSum      atomic.Int64  // ns
	rttOver     atomic.Uint64
	rtt         [rttBucketCount]atomic.Uint64 // not cumulative
}

// observeRTT records one round trip of d.
func (p *peerCounters) observeRTT(d time.Duration) {
	if p == nil {
		return
	}
	p.rttSum.Add(int64(d))
	bound := rttFirstBucket
	for i := range p.rtt {
		if d <= bound {
			p.rtt[i].Add(1)
			return
		}
		bound <<= 1
	}
	p.rttOver.Add(1)
}

// noteDial counts a connection being dialled to the peer.
func (p *peerCounters) noteDial() {
	if p != nil {
		p.dials.Add(1)
	}
}

// countSent and countReceived add n bytes; they accept a nil receiver (a peer not accounted
// for).
func (p *peerCounters) countSent(n int) {
	if p != nil && n > 0 {
		p.sent.Add(uint64(n))
	}
}

func (p *peerCounters) countReceived(n int) {
	if p != nil && n > 0 {
		p.recvd.Add(uint64(n))
	}
}

// stat is a copy of the counters. Each is read atomically, not all at once: a snapshot taken
// while traffic flows may count a round trip in Sum and not yet in its bucket.
func (p *peerCounters) stat() PeerStat {
	s := PeerStat{ID: p.id, SentBytes: p.sent.Load(), ReceivedBytes: p.recvd.Load()}
	if a := p.addr.Load(); a != nil {
		s.Addr = *a
	}
	s.RTT.Buckets = make([]uint64, rttBucketCount)
	var total uint64
	for i := range p.rtt {
		total += p.rtt[i].Load()
		s.RTT.Buckets[i] = total
	}
	s.RTT.Count = total + p.rttOver.Load()
	s.RTT.Sum = time.Duration(p.rttSum.Load())
	return s
}

// peerTable holds a transport's peerCounters: one per known ID, and one per address (dialled)
// or host (connected from) of peers whose ID is not known. Looking a peer up happens once per
// connection and once per round trip measured; the lookup is lock-free once the peer exists
// (sync.Map), and creating one takes mu.
type peerTable struct {
	byKey sync.Map // peerKey → *peerCounters
	mu    sync.Mutex
	n     int                                  // entries in byKey; guarded by mu
	addrs map[raft.ServerAddress]raft.ServerID // IDs learnt for dialled addresses; guarded by mu
}

// peerKey names a peer in the table: its ID when known, else its address.
type peerKey struct {
	id   raft.ServerID
	addr raft.ServerAddress
}

// dialled returns the counters of the peer dialled at addr, expected to be id (empty when the
// dialler does not know it: then the ID learnt for addr from an earlier dial, if any). It
// returns nil when the table is full.
func (pt *peerTable) dialled(id raft.ServerID, addr raft.ServerAddress) *peerCounters {
	if id == "" {
		pt.mu.Lock()
		id = pt.addrs[addr]
		pt.mu.Unlock()
	}
	key := peerKey{id: id}
	if id == "" {
		key.addr = addr
	}
	p := pt.get(key)
	if p != nil && id != "" {
		if old := p.addr.Load(); old == nil || *old != addr {
			p.addr.Store(&addr)
		}
		pt.mu.Lock()
		if pt.addrs == nil {
			pt.addrs = make(map[raft.ServerAddress]raft.ServerID)
		}
		if _, ok := pt.addrs[addr]; !ok && len(pt.addrs) < maxPeerStats {
			pt.addrs[addr] = id
		}
		pt.mu.Unlock()
	}
	return p
}

// accepted returns the counters of a peer that connected from remote, stating id (empty if it
// stated none); nil when the table is full.
func (pt *peerTable) accepted(id raft.ServerID, remote net.Addr) *peerCounters {
	host := remote.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if id != "" {
		p := pt.get(peerKey{id: id})
		if p != nil && p.addr.Load() == nil {
			a := raft.ServerAddress(host)
			p.addr.CompareAndSwap(nil, &a)
		}
		return p
	}
	return pt.get(peerKey{addr: raft.ServerAddress(host)})
}

// byID returns the counters of the peer with id if it is in the table (a round trip is
// measured on an RPC whose connection created them), without creating any.
func (pt *peerTable) byID(id raft.ServerID) *peerCounters {
	if v, ok := pt.byKey.Load(peerKey{id: id}); ok {
		return v.(*peerCounters)
	}
	return nil
}

// get returns the counters under key, creating them unless the table is full.
func (pt *peerTable) get(key peerKey) *peerCounters {
	if v, ok := pt.byKey.Load(key); ok {
		return v.(*peerCounters)
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if v, ok := pt.byKey.Load(key); ok {
		return v.(*peerCounters)
	}
	if pt.n >= maxPeerStats {
		return nil
	}
	p := &peerCounters{id: key.id}
	if key.addr != "" {
		a := key.addr
		p.addr.Store(&a)
	}
	pt.byKey.Store(key, p)
	pt.n++
	return p
}

// stats returns every peer's counters, sorted by ID, then address.
func (pt *peerTable) stats() []PeerStat {
	var out []PeerStat
	pt.byKey.Range(func(_, v any) bool {
		out = append(out, v.(*peerCounters).stat())
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}
