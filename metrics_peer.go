package kvstore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore/transport"
)

// peerMetrics exports what a node's transport counted per peer, under etcd's names and labels
// (To for what goes to a peer, From for what comes from one), when the transport reports it
// (transport.PeerStatsReporter); a transport that does not yields no series. Values are read
// from the transport when the registry is gathered: the traffic path pays only the transport's
// atomic adds.
type peerMetrics struct {
	sent, received, rtt *prometheus.Desc
	// rttBounds are the transport's RTT bucket bounds in seconds.
	rttBounds []float64
}

func newPeerMetrics() peerMetrics {
	bounds := transport.RTTBuckets()
	secs := make([]float64, len(bounds))
	for i, b := range bounds {
		secs[i] = b.Seconds()
	}
	return peerMetrics{
		sent:      prometheus.NewDesc("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", []string{"To"}, nil),
		received:  prometheus.NewDesc("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", []string{"From"}, nil),
		rtt:       prometheus.NewDesc("etcd_network_peer_round_trip_time_seconds", "Round-trip-time histogram between peers: raft heartbeats from this member, as leader, to each follower.", []string{"To"}, nil),
		rttBounds: secs,
	}
}

func (p *peerMetrics) describe(ch chan<- *prometheus.Desc) {
	ch <- p.sent
	ch <- p.received
	ch <- p.rtt
}

// collect exports tr's per-peer counters, if it keeps any. A peer is named by its server ID,
// or by its address when the transport does not know the ID; entries that would carry the same
// name (an ID that reads like another peer's address) are added up, since a registry refuses
// two series with the same labels.
func (p *peerMetrics) collect(ch chan<- prometheus.Metric, tr transport.Transport) {
	r, ok := tr.(transport.PeerStatsReporter)
	if !ok {
		return
	}
	stats := r.PeerStats()
	byName := make(map[string]*transport.PeerStat, len(stats))
	names := make([]string, 0, len(stats))
	for i := range stats {
		s := &stats[i]
		name := string(s.ID)
		if name == "" {
			name = string(s.Addr)
		}
		sum, seen := byName[name]
		if !seen {
			byName[name] = s
			names = append(names, name)
			continue
		}
		sum.SentBytes += s.SentBytes
		sum.ReceivedBytes += s.ReceivedBytes
		sum.RTT.Count += s.RTT.Count
		sum.RTT.Sum += s.RTT.Sum
		for j := range min(len(sum.RTT.Buckets), len(s.RTT.Buckets)) {
			sum.RTT.Buckets[j] += s.RTT.Buckets[j]
		}
	}
	for _, name := range names {
		s := byName[name]
		ch <- prometheus.MustNewConstMetric(p.sent, prometheus.CounterValue, float64(s.SentBytes), name)
		ch <- prometheus.MustNewConstMetric(p.received, prometheus.CounterValue, float64(s.ReceivedBytes), name)
		buckets := make(map[float64]uint64, len(p.rttBounds))
		for i, bound := range p.rttBounds {
			if i < len(s.RTT.Buckets) {
				buckets[bound] = s.RTT.Buckets[i]
			}
		}
		ch <- prometheus.MustNewConstHistogram(p.rtt, s.RTT.Count, s.RTT.Sum.Seconds(), buckets, name)
	}
}
