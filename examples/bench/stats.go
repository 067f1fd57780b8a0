package main

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// Latencies go into log-linear buckets, as in an HDR histogram: exact up to
// 64 ns, then 64 buckets per power of two, so a reported quantile (the
// middle of its bucket) is within 1/128 (0.8%) of a recorded value. The
// histogram has a fixed size (30 KiB) whatever the number of ops.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	numBuckets = (64 - subBits + 1) * subBuckets
)

// histogram records latencies. It is not safe for concurrent use: each
// worker has its own, merged when the run ends.
type histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	min, max time.Duration
}

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - subBuckets
}

// bucketRange returns the smallest value of bucket i and the bucket's width.
func bucketRange(i int) (low, width uint64) {
	if i < subBuckets {
		return uint64(i), 1
	}
	shift := i>>subBits - 1
	return uint64(i&(subBuckets-1)+subBuckets) << shift, 1 << shift
}

func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.counts[bucketOf(uint64(d))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the latency below which a fraction q of the ops fall.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			low, width := bucketRange(i)
			v := time.Duration(low + width/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// window is what one timed run measured.
type window struct {
	hist    *histogram
	elapsed time.Duration
	// mallocs and bytes allocated by the whole process (every node, raft,
	// the workers) during the run.
	mallocs, bytes uint64
}

// figures are what one run of a workload reports.
type figures struct {
	Ops         float64       `json:"ops"`
	OpsPerSec   float64       `json:"ops_per_sec"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	P999        time.Duration `json:"p999_ns"`
	AllocsPerOp float64       `json:"allocs_per_op"`
	BytesPerOp  float64       `json:"bytes_per_op"`
}

func newFigures(w window) figures {
	h := w.hist
	f := figures{Ops: float64(h.n), P50: h.quantile(0.50), P99: h.quantile(0.99), P999: h.quantile(0.999)}
	if w.elapsed > 0 {
		f.OpsPerSec = float64(h.n) / w.elapsed.Seconds()
	}
	if h.n > 0 {
		f.AllocsPerOp, f.BytesPerOp = float64(w.mallocs)/float64(h.n), float64(w.bytes)/float64(h.n)
	}
	return f
}

// medianFigures takes the median of each figure on its own, as
// BENCHMARKS.md reports them.
func medianFigures(runs []figures) figures {
	pick := func(get func(figures) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = get(r)
		}
		return median(xs)
	}
	return figures{
		Ops:         pick(func(f figures) float64 { return f.Ops }),
		OpsPerSec:   pick(func(f figures) float64 { return f.OpsPerSec }),
		P50:         time.Duration(pick(func(f figures) float64 { return float64(f.P50) })),
		P99:         time.Duration(pick(func(f figures) float64 { return float64(f.P99) })),
		P999:        time.Duration(pick(func(f figures) float64 { return float64(f.P999) })),
		AllocsPerOp: pick(func(f figures) float64 { return f.AllocsPerOp }),
		BytesPerOp:  pick(func(f figures) float64 { return f.BytesPerOp }),
	}
}

// median of xs (the mean of the middle two for an even count); 0 if empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
