package lease_test

import (
	"testing"
	"time"

	"github.com/kvstore/kvstore/lease"
)

func TestRateLimiter(t *testing.T) {
	l := lease.NewRateLimiter(lease.DefaultRevokesPerSecond, 100)
	if got := l.Available(t0); got != 100 {
		t.Fatalf("new bucket holds %d tokens, want the burst 100", got)
	}
	if got := l.Take(t0, 30); got != 30 {
		t.Errorf("Take(30) = %d", got)
	}
	if got := l.Take(t0, 500); got != 70 {
		t.Errorf("Take(500) from 70 = %d, want 70", got)
	}
	if got := l.Take(t0, 1); got != 0 {
		t.Errorf("Take from an empty bucket = %d", got)
	}
	if got := l.Take(t0, -3); got != 0 {
		t.Errorf("Take(-3) = %d", got)
	}
	if ready := l.ReadyAt(t0); !ready.Equal(t0.Add(time.Millisecond)) {
		t.Errorf("ReadyAt = %v, want t0+1ms", ready.Sub(t0))
	}
	if got := l.Available(t0.Add(time.Millisecond)); got != 1 {
		t.Errorf("after 1ms at 1000/s: %d tokens, want 1", got)
	}
	if got := l.Available(t0.Add(25 * time.Millisecond)); got != 25 {
		t.Errorf("after 25ms at 1000/s: %d tokens, want 25", got)
	}
	// A clock going backwards earns nothing and loses nothing.
	if got := l.Available(t0); got != 25 {
		t.Errorf("after time went backwards: %d tokens, want 25", got)
	}
	if ready := l.ReadyAt(t0); !ready.Equal(t0) {
		t.Errorf("ReadyAt with tokens available = %v, want now", ready)
	}
	// The bucket never holds more than the burst.
	if got := l.Available(t0.Add(time.Hour)); got != 100 {
		t.Errorf("after an hour: %d tokens, want the burst 100", got)
	}

	// 1,000 revokes a second in steady state, whatever the tick.
	l = lease.NewRateLimiter(1000, 10)
	total := 0
	for i := range 1000 {
		total += l.Take(t0.Add(time.Duration(i)*time.Millisecond+time.Millisecond), 1000)
	}
	if total < 999 || total > 1010 {
		t.Errorf("took %d tokens in one second at 1000/s with burst 10", total)
	}
}

func TestRateLimiterReadyAtIsEnough(t *testing.T) {
	for _, rate := range []float64{1, 3, 7.5, 1000, 333333} {
		l := lease.NewRateLimiter(rate, 1)
		now := t0
		l.Take(now, 1)
		for range 50 {
			ready := l.ReadyAt(now)
			if got := l.Take(ready, 1); got != 1 {
				t.Fatalf("rate %v: no token at ReadyAt (%v after now)", rate, ready.Sub(now))
			}
			now = ready
		}
	}
}

func TestNewRateLimiterPanicsOnBadArguments(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {-1, 1}, {1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewRateLimiter(%v, %d) did not panic", c.rate, c.burst)
				}
			}()
			lease.NewRateLimiter(c.rate, c.burst)
		}()
	}
}
