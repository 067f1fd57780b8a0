package lease_test

import (
	"fmt"
	"time"

	"github.com/kvstore/kvstore/lease"
)

// Example shows the state machine applying lease commands to a Table while
// the leader's Expirer decides what to revoke, then a leader change that
// starts leases from their checkpoints.
func Example() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	table := lease.NewTable(5) // cluster-wide minimum TTL: 5s
	expirer := lease.NewExpirer(0)
	limiter := lease.NewRateLimiter(lease.DefaultRevokesPerSecond, 100)
	expirer.Promote(start, table.Leases(), 2*time.Second)

	// Apply: grant two leases and attach keys.
	for _, g := range []struct {
		id  lease.ID
		ttl int64
	}{{1, 10}, {2, 60}} {
		ttl, _ := table.Grant(g.id, g.ttl)
		expirer.Add(g.id, ttl, start)
	}
	_ = table.SetKeyLease("/lock/b", 1)
	_ = table.SetKeyLease("/lock/a", 1)
	_ = table.SetKeyLease("/svc/x", 2)

	// Leader: expiry loop at start+10s.
	now := start.Add(10 * time.Second)
	ids := expirer.Expired(now, limiter.Available(now))
	limiter.Take(now, len(ids))
	for _, id := range ids { // each revoke is logged, then applied:
		keys, _ := table.Revoke(id)
		expirer.Remove(id)
		fmt.Println("revoked", id, "deleting", keys)
	}

	// Leader: periodic checkpoint at start+20s, logged and applied.
	now = start.Add(20 * time.Second)
	for _, cp := range expirer.Checkpoints(now) {
		_ = table.Checkpoint(cp.ID, cp.Remaining)
	}

	// Another node takes over at start+25s.
	next := lease.NewExpirer(0)
	now = start.Add(25 * time.Second)
	next.Promote(now, table.Leases(), 2*time.Second)
	remaining, _ := next.Remaining(2, now)
	fmt.Println("lease 2 restarts with", remaining, "of", table.Leases()[0].TTL, "seconds")
	// Output:
	// revoked 1 deleting [/lock/a /lock/b]
	// lease 2 restarts with 40s of 60 seconds
}
