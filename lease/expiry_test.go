package lease_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kvstore/kvstore/lease"
)

// t0 is the fake clock's origin. It carries no monotonic reading, like
// times a test builds by hand.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns the fake time d after t0.
func at(d time.Duration) time.Time { return t0.Add(d) }

const sec = time.Second

// leader returns an Expirer promoted at t0 with no leases.
func leader() *lease.Expirer {
	e := lease.NewExpirer(5 * sec)
	e.Promote(t0, nil, 0)
	return e
}

func TestExpirerFollowerTracksNothing(t *testing.T) {
	e := lease.NewExpirer(0)
	if e.Leading() {
		t.Fatal("a new Expirer is leading")
	}
	e.Add(1, 10, t0)
	if e.Len() != 0 {
		t.Errorf("follower tracks %d leases after Add", e.Len())
	}
	if _, _, err := e.Renew(1, t0); !errors.Is(err, lease.ErrNotLeader) {
		t.Errorf("follower Renew: err = %v, want ErrNotLeader", err)
	}
	if ids := e.Expired(at(time.Hour), 10); ids != nil {
		t.Errorf("follower Expired = %v", ids)
	}
	if _, ok := e.NextDeadline(); ok {
		t.Error("follower has a next deadline")
	}
	if cps := e.Checkpoints(at(time.Hour)); cps != nil {
		t.Errorf("follower Checkpoints = %v", cps)
	}
	e.Remove(1) // no-op, no panic

	e.Promote(t0, []lease.Lease{{ID: 1, TTL: 10}}, 0)
	e.Demote()
	if e.Leading() || e.Len() != 0 {
		t.Errorf("after Demote: Leading=%v Len=%d", e.Leading(), e.Len())
	}
	if _, ok := e.Remaining(1, t0); ok {
		t.Error("Demote kept a lease")
	}
}

func TestExpirerExpiryOrder(t *testing.T) {
	e := leader()
	e.Add(1, 30, t0)
	e.Add(2, 10, t0)
	e.Add(3, 20, t0)
	e.Add(4, 10, t0) // ties with 2: lower ID first
	e.Add(5, 100, at(-50*sec))

	if next, ok := e.NextDeadline(); !ok || !next.Equal(at(10*sec)) {
		t.Errorf("NextDeadline = %v, %v; want t0+10s", next, ok)
	}
	if ids := e.Expired(at(10*sec-1), 10); ids != nil {
		t.Errorf("Expired before any deadline = %v", ids)
	}
	if ids := e.Expired(at(10*sec), 10); !slices.Equal(ids, []lease.ID{2, 4}) {
		t.Errorf("Expired at t0+10s = %v, want [2 4] (deadline is inclusive)", ids)
	}
	e.Remove(2)
	e.Remove(4)
	if ids := e.Expired(at(time.Minute), 10); !slices.Equal(ids, []lease.ID{3, 1, 5}) {
		t.Errorf("Expired at t0+60s = %v, want [3 1 5] (earliest first)", ids)
	}
}

func TestExpirerExpiredLimit(t *testing.T) {
	e := leader()
	for id := lease.ID(1); id <= 5; id++ {
		e.Add(id, int64(id), t0)
	}
	now := at(time.Minute)
	if ids := e.Expired(now, 0); ids != nil {
		t.Errorf("Expired with limit 0 = %v", ids)
	}
	var got []lease.ID
	for _, want := range [][]lease.ID{{1, 2}, {3, 4}, {5}, nil} {
		ids := e.Expired(now, 2)
		if !slices.Equal(ids, want) {
			t.Errorf("Expired(limit 2) = %v, want %v", ids, want)
		}
		got = append(got, ids...)
	}
	if len(got) != 5 {
		t.Errorf("leases reported: %v", got)
	}
}

func TestExpirerReportsOncePerRetry(t *testing.T) {
	e := leader() // retry 5s
	e.Add(1, 10, t0)
	e.Add(2, 10, t0)
	if ids := e.Expired(at(11*sec), 10); !slices.Equal(ids, []lease.ID{1, 2}) {
		t.Fatalf("first Expired = %v", ids)
	}
	if ids := e.Expired(at(12*sec), 10); ids != nil {
		t.Errorf("Expired reported %v again before the retry interval", ids)
	}
	if next, _ := e.NextDeadline(); !next.Equal(at(16 * sec)) {
		t.Errorf("NextDeadline = %v, want the retry time t0+16s", next)
	}
	// The revoke of 1 is applied; 2's proposal was lost.
	e.Remove(1)
	if ids := e.Expired(at(16*sec), 10); !slices.Equal(ids, []lease.ID{2}) {
		t.Errorf("Expired after the retry interval = %v, want [2]", ids)
	}
	e.Remove(2)
	if ids := e.Expired(at(time.Hour), 10); ids != nil {
		t.Errorf("removed leases reported: %v", ids)
	}
	if _, ok := e.NextDeadline(); ok {
		t.Error("NextDeadline with nothing tracked")
	}
	// A re-grant of the ID is tracked afresh.
	e.Add(1, 10, at(time.Hour))
	if ids := e.Expired(at(time.Hour+10*sec), 10); !slices.Equal(ids, []lease.ID{1}) {
		t.Errorf("re-granted lease: Expired = %v", ids)
	}
}

func TestExpirerRenew(t *testing.T) {
	e := leader()
	e.Add(1, 10, t0)
	ttl, clearCP, err := e.Renew(1, at(8*sec))
	if err != nil || ttl != 10 || clearCP {
		t.Fatalf("Renew = %d, %v, %v; want 10, false, nil", ttl, clearCP, err)
	}
	if ids := e.Expired(at(15*sec), 10); ids != nil {
		t.Errorf("renewed lease expired at its old deadline: %v", ids)
	}
	if rem, ok := e.Remaining(1, at(15*sec)); !ok || rem != 3*sec {
		t.Errorf("Remaining = %v, %v; want 3s", rem, ok)
	}
	if next, _ := e.NextDeadline(); !next.Equal(at(18 * sec)) {
		t.Errorf("NextDeadline = %v, want t0+18s", next)
	}
	if ids := e.Expired(at(18*sec), 10); !slices.Equal(ids, []lease.ID{1}) {
		t.Errorf("Expired at the new deadline = %v", ids)
	}
	if rem, ok := e.Remaining(1, at(20*sec)); !ok || rem != 0 {
		t.Errorf("Remaining after deadline = %v, %v; want 0, true", rem, ok)
	}

	// An expired lease cannot be revived.
	_, _, err = e.Renew(1, at(19*sec))
	if !errors.Is(err, lease.ErrLeaseExpired) || !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Errorf("renewing an expired lease: err = %v, want ErrLeaseExpired wrapping ErrLeaseNotFound", err)
	}
	if _, _, err := e.Renew(2, t0); !errors.Is(err, lease.ErrLeaseNotFound) || errors.Is(err, lease.ErrLeaseExpired) {
		t.Errorf("renewing an unknown lease: err = %v, want ErrLeaseNotFound", err)
	}
	if _, ok := e.Remaining(2, t0); ok {
		t.Error("Remaining of an unknown lease")
	}
}

func TestExpirerPromote(t *testing.T) {
	e := leader()
	e.Add(99, 10, t0) // replaced by Promote
	now := at(time.Hour)
	e.Promote(now, []lease.Lease{
		{ID: 1, TTL: 60},                // never checkpointed: full TTL
		{ID: 2, TTL: 60, Remaining: 20}, // checkpointed
		{ID: 3, TTL: 60, Remaining: 1},  // checkpointed below the minimum
		{ID: 4, TTL: 2},                 // TTL below the minimum
	}, 5*sec)
	if !e.Leading() || e.Len() != 4 {
		t.Fatalf("Leading=%v Len=%d after Promote", e.Leading(), e.Len())
	}
	if _, ok := e.Remaining(99, now); ok {
		t.Error("Promote kept a lease from the previous term")
	}
	for id, want := range map[lease.ID]time.Duration{1: 60 * sec, 2: 20 * sec, 3: 5 * sec, 4: 5 * sec} {
		if rem, ok := e.Remaining(id, now); !ok || rem != want {
			t.Errorf("lease %d: Remaining = %v, %v; want %v", id, rem, ok, want)
		}
	}
	if ids := e.Expired(now.Add(5*sec), 10); !slices.Equal(ids, []lease.ID{3, 4}) {
		t.Errorf("Expired at +5s = %v, want [3 4]", ids)
	}
	// Renewal after promotion restores the full TTL.
	if ttl, _, err := e.Renew(2, now.Add(10*sec)); err != nil || ttl != 60 {
		t.Errorf("Renew = %d, %v", ttl, err)
	}
	if rem, _ := e.Remaining(2, now.Add(10*sec)); rem != 60*sec {
		t.Errorf("Remaining after renew = %v, want 60s", rem)
	}
}

func TestExpirerCheckpoints(t *testing.T) {
	e := leader()
	e.Add(2, 60, t0)
	e.Add(1, 30, t0)
	if cps := e.Checkpoints(t0); cps != nil {
		t.Errorf("Checkpoints of fresh leases = %v, want none", cps)
	}
	want := []lease.Checkpoint{{ID: 1, Remaining: 20}, {ID: 2, Remaining: 50}}
	if cps := e.Checkpoints(at(10*sec + sec/2)); !slices.Equal(cps, want) {
		t.Errorf("Checkpoints at t0+10.5s = %v, want %v (by ID, rounded up)", cps, want)
	}
	if cps := e.Checkpoints(at(10*sec + sec/2)); cps != nil {
		t.Errorf("unchanged leases checkpointed again: %v", cps)
	}
	if cps := e.Checkpoints(at(20 * sec)); !slices.Equal(cps, []lease.Checkpoint{{1, 10}, {2, 40}}) {
		t.Errorf("Checkpoints at t0+20s = %v", cps)
	}

	// A renewal makes the checkpoint stale: the caller must clear it once.
	if _, clearCP, _ := e.Renew(2, at(20*sec)); !clearCP {
		t.Error("Renew of a checkpointed lease did not ask for a clear")
	}
	if _, clearCP, _ := e.Renew(2, at(21*sec)); clearCP {
		t.Error("second Renew asked for a clear again")
	}
	if cps := e.Checkpoints(at(21 * sec)); !slices.Equal(cps, []lease.Checkpoint{{1, 9}}) {
		t.Errorf("Checkpoints right after renewing 2 = %v, want only lease 1", cps)
	}
	if cps := e.Checkpoints(at(22 * sec)); !slices.Equal(cps, []lease.Checkpoint{{1, 8}, {2, 59}}) {
		t.Errorf("Checkpoints at t0+22s = %v", cps)
	}

	// An expired lease awaiting its revoke is checkpointed at 1 second.
	if cps := e.Checkpoints(at(time.Hour)); !slices.Equal(cps, []lease.Checkpoint{{1, 1}, {2, 1}}) {
		t.Errorf("Checkpoints of expired leases = %v", cps)
	}

	// Leases promoted from a checkpoint know it: renewing asks for a clear.
	e.Promote(t0, []lease.Lease{{ID: 7, TTL: 60, Remaining: 30}, {ID: 8, TTL: 60}}, 0)
	if _, clearCP, _ := e.Renew(7, t0); !clearCP {
		t.Error("Renew of a lease promoted from a checkpoint did not ask for a clear")
	}
	if _, clearCP, _ := e.Renew(8, t0); clearCP {
		t.Error("Renew of a never-checkpointed lease asked for a clear")
	}
	if cps := e.Checkpoints(at(30 * sec)); !slices.Equal(cps, []lease.Checkpoint{{7, 30}, {8, 30}}) {
		t.Errorf("Checkpoints = %v", cps)
	}
}

// TestLeaderChange runs leases through a leader change the way the root
// package wires Table and Expirer, checking that leases are neither reset to
// their full TTL nor expired early.
func TestLeaderChange(t *testing.T) {
	tab := lease.NewTable(1)
	old := leader()
	for _, id := range []lease.ID{1, 2} {
		ttl := mustGrant(t, tab, id, 100)
		old.Add(id, ttl, t0)
	}
	apply := func(cps []lease.Checkpoint) {
		for _, cp := range cps {
			if err := tab.Checkpoint(cp.ID, cp.Remaining); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(old.Checkpoints(at(40 * sec))) // both at 60s remaining
	// Lease 2 is kept alive at t0+50s; the leader logs the clear.
	if _, clearCP, _ := old.Renew(2, at(50*sec)); clearCP {
		apply([]lease.Checkpoint{{ID: 2, Remaining: 0}})
	} else {
		t.Fatal("Renew did not ask to clear the stale checkpoint")
	}
	old.Demote()

	// A new leader takes over at t0+55s with a 2s election timeout.
	next := lease.NewExpirer(0)
	now := at(55 * sec)
	next.Promote(now, tab.Leases(), 2*sec)
	if rem, _ := next.Remaining(1, now); rem != 60*sec {
		t.Errorf("lease 1 restarts with %v, want its checkpointed 60s (not its full 100s)", rem)
	}
	if rem, _ := next.Remaining(2, now); rem < 95*sec {
		t.Errorf("renewed lease 2 restarts with %v, would expire before its renewed deadline t0+150s", rem)
	}
}

func TestExpirerConcurrent(t *testing.T) {
	e := leader()
	const leases = 200
	for id := lease.ID(1); id <= leases; id++ {
		e.Add(id, 10, t0)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				now := at(time.Duration(i) * 10 * time.Millisecond)
				id := lease.ID((g*500+i)%leases + 1)
				switch i % 5 {
				case 0:
					e.Expired(now, 3)
				case 1:
					e.Checkpoints(now)
				case 2:
					e.Remaining(id, now)
				case 3:
					e.NextDeadline()
				default:
					_, _, _ = e.Renew(id, now)
				}
			}
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := lease.ID(leases + 1); id <= leases+200; id++ {
			e.Add(id, 5, t0)
			e.Remove(id - 100)
		}
	}()
	wg.Wait()
	if e.Len() != 200 {
		t.Errorf("Len = %d, want 200", e.Len())
	}
}
