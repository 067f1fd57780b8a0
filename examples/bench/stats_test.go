package main

import (
	"math"
	"testing"
	"time"
)

func TestBucketsCoverValues(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 123456789, 1 << 40, math.MaxUint64} {
		low, width := bucketRange(bucketOf(v))
		if v < low || v-low >= width {
			t.Errorf("value %d in bucket [%d, %d+%d)", v, low, low, width)
		}
		if width > 1 && float64(width)/float64(low) > 1.0/subBuckets {
			t.Errorf("value %d: bucket width %d too coarse for low %d", v, width, low)
		}
	}
	if got := bucketOf(math.MaxUint64); got != numBuckets-1 {
		t.Errorf("largest value in bucket %d, want %d", got, numBuckets-1)
	}
}

func TestQuantiles(t *testing.T) {
	var h, other histogram
	for i := 1; i <= 10_000; i++ {
		target := &h
		if i%2 == 0 {
			target = &other
		}
		target.record(time.Duration(i) * time.Microsecond)
	}
	h.merge(&other)
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}, {1, 10 * time.Millisecond}, {0, time.Microsecond}} {
		got := h.quantile(c.q)
		if math.Abs(float64(got-c.want)) > float64(c.want)/100 {
			t.Errorf("quantile %v = %v, want %v within 1%%", c.q, got, c.want)
		}
	}
	if h.n != 10_000 || h.min != time.Microsecond || h.max != 10*time.Millisecond {
		t.Errorf("n %d min %v max %v", h.n, h.min, h.max)
	}
}

func TestMedianFigures(t *testing.T) {
	runs := []figures{{Ops: 3, P50: 30}, {Ops: 1, P50: 10}, {Ops: 2, P50: 50}}
	if m := medianFigures(runs); m.Ops != 2 || m.P50 != 30 {
		t.Errorf("median %+v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of an even count = %v", m)
	}
}
