package lease_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kvstore/kvstore/lease"
)

func mustGrant(t testing.TB, tab *lease.Table, id lease.ID, ttl int64) int64 {
	t.Helper()
	granted, err := tab.Grant(id, ttl)
	if err != nil {
		t.Fatalf("Grant(%d, %d): %v", id, ttl, err)
	}
	return granted
}

func mustAttach(t testing.TB, tab *lease.Table, id lease.ID, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := tab.SetKeyLease(k, id); err != nil {
			t.Fatalf("SetKeyLease(%q, %d): %v", k, id, err)
		}
	}
}

func TestGrant(t *testing.T) {
	tab := lease.NewTable(5)
	if got := mustGrant(t, tab, 1, 60); got != 60 {
		t.Errorf("granted TTL = %d, want 60", got)
	}
	if !tab.Exists(1) || tab.Len() != 1 {
		t.Fatalf("Exists(1) = %v, Len = %d after grant", tab.Exists(1), tab.Len())
	}
	if l, ok := tab.Lookup(1); !ok || l != (lease.Lease{ID: 1, TTL: 60}) {
		t.Errorf("Lookup(1) = %+v, %v", l, ok)
	}
	if _, err := tab.Grant(1, 30); !errors.Is(err, lease.ErrLeaseExists) {
		t.Errorf("granting a live ID: err = %v, want ErrLeaseExists", err)
	}
	if l, _ := tab.Lookup(1); l.TTL != 60 {
		t.Errorf("failed re-grant changed the TTL to %d", l.TTL)
	}
	if _, err := tab.Grant(lease.NoLease, 10); !errors.Is(err, lease.ErrInvalidID) {
		t.Errorf("Grant(NoLease): err = %v, want ErrInvalidID", err)
	}
	if _, err := tab.Grant(2, lease.MaxTTL+1); !errors.Is(err, lease.ErrTTLTooLarge) {
		t.Errorf("TTL above MaxTTL: err = %v, want ErrTTLTooLarge", err)
	}
	if got := mustGrant(t, tab, 2, lease.MaxTTL); got != lease.MaxTTL {
		t.Errorf("MaxTTL granted as %d", got)
	}
	for id, ttl := range map[lease.ID]int64{3: 4, 4: 0, 5: -7} {
		if got := mustGrant(t, tab, id, ttl); got != 5 {
			t.Errorf("Grant(%d, %d) = %d, want the minimum 5", id, ttl, got)
		}
	}
	if got := tab.IDs(); !slices.Equal(got, []lease.ID{1, 2, 3, 4, 5}) {
		t.Errorf("IDs = %v", got)
	}
	for _, err := range []error{lease.ErrLeaseNotFound, lease.ErrLeaseExists, lease.ErrTTLTooLarge,
		lease.ErrInvalidID, lease.ErrNotLeader, lease.ErrCorruptSnapshot, lease.ErrSnapshotVersion, lease.ErrLeaseExpired} {
		if msg := err.Error(); len(msg) < 7 || msg[:7] != "lease: " {
			t.Errorf("error %q lacks the \"lease: \" prefix", msg)
		}
	}
}

func TestNewTableClampsMinTTL(t *testing.T) {
	for minTTL, want := range map[int64]int64{-1: 1, 0: 1, 1: 1, 7: 7, lease.MaxTTL + 5: lease.MaxTTL} {
		if got := lease.NewTable(minTTL).MinTTL(); got != want {
			t.Errorf("NewTable(%d).MinTTL() = %d, want %d", minTTL, got, want)
		}
	}
}

func TestRevoke(t *testing.T) {
	tab := lease.NewTable(1)
	mustGrant(t, tab, 7, 10)
	mustGrant(t, tab, 8, 10)
	mustAttach(t, tab, 7, "c", "a", "b")
	mustAttach(t, tab, 8, "z")

	keys, err := tab.Revoke(7)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !slices.Equal(keys, []string{"a", "b", "c"}) {
		t.Errorf("Revoke keys = %q, want sorted [a b c]", keys)
	}
	if tab.Exists(7) || tab.Len() != 1 || tab.Keys(7) != nil {
		t.Errorf("revoked lease still visible: Exists=%v Len=%d Keys=%q", tab.Exists(7), tab.Len(), tab.Keys(7))
	}
	if _, ok := tab.Lookup(7); ok {
		t.Error("Lookup found a revoked lease")
	}
	for _, k := range []string{"a", "b", "c"} {
		if id := tab.KeyLease(k); id != lease.NoLease {
			t.Errorf("KeyLease(%q) = %d after revoke", k, id)
		}
	}

	before := tab.Hash()
	if keys, err := tab.Revoke(7); !errors.Is(err, lease.ErrLeaseNotFound) || keys != nil {
		t.Errorf("second Revoke = %q, %v; want nil, ErrLeaseNotFound", keys, err)
	}
	if _, err := tab.Revoke(99); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Errorf("Revoke(unknown): err = %v", err)
	}
	if tab.Hash() != before {
		t.Error("failed revokes changed the table")
	}

	if keys, err := tab.Revoke(8); err != nil || !slices.Equal(keys, []string{"z"}) {
		t.Errorf("Revoke(8) = %q, %v", keys, err)
	}

	// A revoked ID may be granted again and starts empty.
	if got := mustGrant(t, tab, 7, 20); got != 20 {
		t.Errorf("re-grant TTL = %d", got)
	}
	if keys := tab.Keys(7); keys != nil {
		t.Errorf("re-granted lease has keys %q", keys)
	}
	if keys, err := tab.Revoke(7); err != nil || keys != nil {
		t.Errorf("revoking a lease without keys = %q, %v; want nil, nil", keys, err)
	}
}

func TestSetKeyLease(t *testing.T) {
	tab := lease.NewTable(1)
	mustGrant(t, tab, 1, 10)
	mustGrant(t, tab, 2, 10)
	mustAttach(t, tab, 1, "k", "m")

	// The key's lease changes from 1 to 2.
	mustAttach(t, tab, 2, "k")
	if got := tab.Keys(1); !slices.Equal(got, []string{"m"}) {
		t.Errorf("Keys(1) = %q after moving k", got)
	}
	if got := tab.Keys(2); !slices.Equal(got, []string{"k"}) {
		t.Errorf("Keys(2) = %q after moving k", got)
	}
	if got := tab.KeyLease("k"); got != 2 {
		t.Errorf("KeyLease(k) = %d", got)
	}
	// Attaching again to the same lease changes nothing.
	h := tab.Hash()
	mustAttach(t, tab, 2, "k")
	if tab.Hash() != h {
		t.Error("re-attaching to the same lease changed the table")
	}

	// A put without a lease, or a delete, detaches.
	mustAttach(t, tab, lease.NoLease, "k")
	if got := tab.Keys(2); got != nil {
		t.Errorf("Keys(2) = %q after detaching k", got)
	}
	if got := tab.KeyLease("k"); got != lease.NoLease {
		t.Errorf("KeyLease(k) = %d after detach", got)
	}
	mustAttach(t, tab, lease.NoLease, "never-attached")

	// Unknown and invalid leases change nothing.
	h = tab.Hash()
	if err := tab.SetKeyLease("m", 3); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Errorf("attach to unknown lease: err = %v", err)
	}
	if err := tab.SetKeyLease("m", -1); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Errorf("attach to an unknown negative lease: err = %v", err)
	}
	if tab.Hash() != h || tab.KeyLease("m") != 1 {
		t.Error("failed SetKeyLease changed the table")
	}

	// Revoking the old lease does not take a key that moved away.
	mustAttach(t, tab, 2, "m")
	if keys, _ := tab.Revoke(1); keys != nil {
		t.Errorf("Revoke(1) = %q, want no keys", keys)
	}
	if got := tab.Keys(2); !slices.Equal(got, []string{"m"}) {
		t.Errorf("Keys(2) = %q", got)
	}
}

func TestCheckpoint(t *testing.T) {
	tab := lease.NewTable(1)
	mustGrant(t, tab, 1, 60)
	for _, c := range []struct{ in, want int64 }{{30, 30}, {60, 60}, {100, 60}, {1, 1}, {0, 0}, {-5, 0}} {
		if err := tab.Checkpoint(1, c.in); err != nil {
			t.Fatalf("Checkpoint(1, %d): %v", c.in, err)
		}
		if l, _ := tab.Lookup(1); l.Remaining != c.want {
			t.Errorf("after Checkpoint(1, %d): Remaining = %d, want %d", c.in, l.Remaining, c.want)
		}
	}
	h := tab.Hash()
	if err := tab.Checkpoint(2, 10); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Errorf("Checkpoint(unknown): err = %v", err)
	}
	if tab.Hash() != h {
		t.Error("checkpoint of an unknown lease changed the table")
	}
	mustGrant(t, tab, 3, 5)
	_ = tab.Checkpoint(3, 2)
	want := []lease.Lease{{ID: 1, TTL: 60}, {ID: 3, TTL: 5, Remaining: 2}}
	if got := tab.Leases(); !slices.Equal(got, want) {
		t.Errorf("Leases = %+v, want %+v", got, want)
	}
}

// applyRandomOps feeds tab a reproducible stream of operations, ignoring the
// errors that some of them return.
func applyRandomOps(tab *lease.Table, seed uint64, n int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	for range n {
		id := lease.ID(rng.IntN(50) + 1)
		key := fmt.Sprintf("key/%03d", rng.IntN(300))
		switch rng.IntN(10) {
		case 0, 1:
			_, _ = tab.Grant(id, rng.Int64N(100))
		case 2:
			_, _ = tab.Revoke(id)
		case 3:
			_ = tab.Checkpoint(id, rng.Int64N(120))
		case 4:
			_ = tab.SetKeyLease(key, lease.NoLease)
		default:
			_ = tab.SetKeyLease(key, id)
		}
	}
}

func TestHashDeterministic(t *testing.T) {
	a, b := lease.NewTable(3), lease.NewTable(3)
	applyRandomOps(a, 42, 5000)
	applyRandomOps(b, 42, 5000)
	if a.Len() == 0 {
		t.Fatal("random ops left no leases; test is vacuous")
	}
	if a.Hash() != b.Hash() {
		t.Error("tables fed the same operations hash differently")
	}
	if !slices.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Error("tables fed the same operations snapshot differently")
	}
	// A repeated Hash is stable.
	if first := a.Hash(); a.Hash() != first {
		t.Error("Hash is not stable")
	}

	c := lease.NewTable(3)
	applyRandomOps(c, 43, 5000)
	if a.Hash() == c.Hash() {
		t.Error("different operation streams produced the same hash")
	}

	// The same state reached in different orders hashes the same.
	x, y := lease.NewTable(1), lease.NewTable(1)
	mustGrant(t, x, 1, 10)
	mustGrant(t, x, 2, 10)
	mustAttach(t, x, 1, "a", "b")
	mustGrant(t, y, 2, 10)
	mustGrant(t, y, 1, 10)
	mustAttach(t, y, 2, "b")
	mustAttach(t, y, 1, "b", "a")
	if x.Hash() != y.Hash() {
		t.Error("equal states reached in different orders hash differently")
	}
	_ = y.Checkpoint(2, 4)
	if x.Hash() == y.Hash() {
		t.Error("a checkpoint did not change the hash")
	}
}

func TestTableConcurrentReads(t *testing.T) {
	tab := lease.NewTable(1)
	applyRandomOps(tab, 3, 2000)
	want := tab.Hash()
	done := make(chan uint64)
	for range 4 {
		go func() {
			for _, id := range tab.IDs() {
				tab.Lookup(id)
				tab.Keys(id)
			}
			tab.Leases()
			done <- tab.Hash()
		}()
	}
	for range 4 {
		if got := <-done; got != want {
			t.Error("concurrent readers saw a different hash")
		}
	}
}
