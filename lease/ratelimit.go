package lease

import (
	"math"
	"sync"
	"time"
)

// DefaultRevokesPerSecond is the revoke rate etcd allows for expired leases
// (leaseRevokeRate).
const DefaultRevokesPerSecond = 1000

// RateLimiter is a token bucket driven by the caller's clock, for limiting
// how many expired leases the leader revokes per second:
//
//	n := limiter.Available(now)
//	ids := expirer.Expired(now, n)
//	limiter.Take(now, len(ids))
//
// The bucket starts full. It is safe for concurrent use.
type RateLimiter struct {
	perSecond float64
	burst     float64

	mu     sync.Mutex
	tokens float64
	// last is when tokens was last refilled, valid once started.
	last    time.Time
	started bool
}

// NewRateLimiter returns a full bucket of burst tokens refilled at perSecond
// tokens a second. It panics if perSecond is not a positive finite number or
// burst is less than 1.
func NewRateLimiter(perSecond float64, burst int) *RateLimiter {
	if !(perSecond > 0) || math.IsInf(perSecond, 1) {
		panic("lease: NewRateLimiter: rate must be positive and finite")
	}
	if burst < 1 {
		panic("lease: NewRateLimiter: burst must be at least 1")
	}
	return &RateLimiter{perSecond: perSecond, burst: float64(burst), tokens: float64(burst)}
}

// Available returns how many whole tokens the bucket holds at now.
func (l *RateLimiter) Available(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	return int(l.tokens)
}

// Take takes up to n whole tokens at now and returns how many it took.
func (l *RateLimiter) Take(now time.Time, n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	taken := min(max(n, 0), int(l.tokens))
	l.tokens -= float64(taken)
	return taken
}

// ReadyAt returns the earliest time, not before now, at which a token is
// available, so the caller can set a timer.
func (l *RateLimiter) ReadyAt(now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	if l.tokens >= 1 {
		return now
	}
	ns := math.Ceil((1 - l.tokens) / l.perSecond * float64(time.Second))
	if ns >= math.MaxInt64 {
		return now.Add(math.MaxInt64)
	}
	wait := time.Duration(ns)
	// Guard against floating-point rounding leaving refill just short.
	for l.tokens+wait.Seconds()*l.perSecond < 1 {
		wait++
	}
	return now.Add(wait)
}

// refill adds the tokens earned since the last call. Time going backwards
// earns nothing.
func (l *RateLimiter) refill(now time.Time) {
	if !l.started {
		l.last, l.started = now, true
		return
	}
	if elapsed := now.Sub(l.last); elapsed > 0 {
		l.tokens = min(l.burst, l.tokens+elapsed.Seconds()*l.perSecond)
		l.last = now
	}
}
