package kvstore

import (
	"testing"
	"time"

	"github.com/kvstore/kvstore/transport"
)

// A node opened without WithAutoCompaction compacts periodically, and
// WithAutoCompaction(AutoCompactionOff, 0) turns it off; etcd's cadences
// follow from the retention.
func TestAutoCompactionConfig(t *testing.T) {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	c, err := buildConfig([]Option{WithID("n1"), WithTransport(tr)})
	if err != nil {
		t.Fatal(err)
	}
	if c.autoCompaction != (autoCompaction{AutoCompactionPeriodic, DefaultAutoCompactionRetention}) {
		t.Fatalf("default auto-compaction %+v", c.autoCompaction)
	}
	c, err = buildConfig([]Option{WithID("n1"), WithTransport(tr), WithAutoCompaction(AutoCompactionOff, 0)})
	if err != nil || c.autoCompaction.mode != AutoCompactionOff {
		t.Fatalf("off: %+v %v", c.autoCompaction, err)
	}
	for _, tc := range []struct {
		ac             autoCompaction
		tick, interval time.Duration
	}{
		{autoCompaction{AutoCompactionPeriodic, 5 * time.Minute}, 30 * time.Second, 5 * time.Minute},
		{autoCompaction{AutoCompactionPeriodic, 59 * time.Minute}, 354 * time.Second, 59 * time.Minute},
		{autoCompaction{AutoCompactionPeriodic, time.Hour}, 6 * time.Minute, time.Hour},
		{autoCompaction{AutoCompactionPeriodic, 24 * time.Hour}, 6 * time.Minute, time.Hour},
		{autoCompaction{AutoCompactionRevision, 1000}, 5 * time.Minute, 5 * time.Minute},
	} {
		if tick, interval := tc.ac.tick(), tc.ac.compactInterval(); tick != tc.tick || interval != tc.interval {
			t.Errorf("%v %s: tick %v, interval %v, want %v, %v", tc.ac.mode, tc.ac.retentionString(), tick, interval, tc.tick, tc.interval)
		}
	}
}

// The samples answer "the revision at t" with the newest sample at or
// before t, and hold no more than a retention's worth plus one.
func TestRevisionSamples(t *testing.T) {
	const retention = 10 * time.Minute
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s revisionSamples
	if _, ok := s.at(start); ok {
		t.Fatal("empty samples answered")
	}
	for minute := range 100 {
		now := start.Add(time.Duration(minute) * time.Minute)
		s.add(now, int64(100+minute), retention)
		if len(s.samples) > int(retention/time.Minute)+2 {
			t.Fatalf("minute %d: %d samples kept", minute, len(s.samples))
		}
		rev, ok := s.at(now.Add(-retention))
		switch {
		case minute < 10 && ok:
			t.Fatalf("minute %d: revision %d of before the first sample", minute, rev)
		case minute >= 10 && (!ok || rev != int64(100+minute-10)):
			t.Fatalf("minute %d: revision %d %v, want %d", minute, rev, ok, 100+minute-10)
		}
		if rev, ok := s.at(now.Add(-retention + 30*time.Second)); minute >= 10 && (!ok || rev != int64(100+minute-10)) {
			t.Fatalf("minute %d, half a minute later: revision %d %v, want %d", minute, rev, ok, 100+minute-10)
		}
	}
}
