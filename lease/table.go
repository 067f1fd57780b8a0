package lease

import (
	"fmt"
	"slices"
)

// ID identifies a lease. Any ID but NoLease (0), which means "no lease",
// may be live: negative ones too, as etcd grants any ID asked for but 0
// (SEMANTICS.md rule 18); the IDs kvstore chooses itself are positive.
type ID int64

// NoLease is the ID of "no lease": a key attached to NoLease is attached to
// nothing.
const NoLease ID = 0

// MaxTTL is the largest TTL, in seconds, a lease may be granted (etcd's
// MaxLeaseTTL).
const MaxTTL int64 = 9_000_000_000

// Lease is the replicated state of one lease, without its keys.
type Lease struct {
	// ID is the lease's ID, always positive.
	ID ID
	// TTL is the granted TTL in seconds, after raising it to the table's
	// minimum.
	TTL int64
	// Remaining is the remaining TTL in seconds recorded by the last
	// checkpoint, between 1 and TTL, or 0 if the lease has never been
	// checkpointed (or its checkpoint was cleared by a renewal).
	Remaining int64
}

// Table is the replicated lease state: which leases exist, their TTLs and
// checkpoints, and which keys are attached to which lease.
//
// Every method is deterministic: the same sequence of calls on two tables
// (with the same minimum TTL) yields the same state, the same Hash and the
// same snapshot bytes. Results are sorted; no clock or map order leaks.
//
// A Table is not safe for concurrent use with writes: Grant, Revoke,
// SetKeyLease, Checkpoint and ReadFrom need exclusive access, while the
// read-only methods may run concurrently with each other (a sync.RWMutex in
// the caller fits). With hashicorp/raft, write the snapshot (WriteTo into a
// buffer) in FSM.Snapshot, not in FSMSnapshot.Persist, which runs
// concurrently with Apply. The zero value is not usable; create tables with
// NewTable.
type Table struct {
	minTTL int64
	leases map[ID]*tableEntry
	// keyLease maps each attached key to its lease; a key is attached to at
	// most one lease.
	keyLease map[string]ID
}

// tableEntry is one lease in a Table.
type tableEntry struct {
	ttl       int64
	remaining int64
	// keys is the set of attached keys, nil while there are none.
	keys map[string]struct{}
}

// NewTable returns an empty table whose grants raise TTLs below minTTL
// seconds to minTTL. minTTL must be the same on every replica (take it from
// cluster configuration, not from local flags); values below 1 mean 1 and
// values above MaxTTL mean MaxTTL.
func NewTable(minTTL int64) *Table {
	return &Table{
		minTTL:   min(max(minTTL, 1), MaxTTL),
		leases:   make(map[ID]*tableEntry),
		keyLease: make(map[string]ID),
	}
}

// MinTTL returns the minimum TTL in seconds the table grants.
func (t *Table) MinTTL() int64 { return t.minTTL }

// Grant creates lease id with a TTL of ttl seconds, raised to the table's
// minimum, and returns the granted TTL. It fails with ErrInvalidID if id is
// NoLease, ErrTTLTooLarge if ttl exceeds MaxTTL and ErrLeaseExists if
// id is live; an ID that has been revoked may be granted again.
func (t *Table) Grant(id ID, ttl int64) (int64, error) {
	if id == NoLease {
		return 0, fmt.Errorf("%w: %d", ErrInvalidID, id)
	}
	if ttl > MaxTTL {
		return 0, fmt.Errorf("%w: %d > %d seconds", ErrTTLTooLarge, ttl, MaxTTL)
	}
	if _, ok := t.leases[id]; ok {
		return 0, fmt.Errorf("%w: %d", ErrLeaseExists, id)
	}
	ttl = max(ttl, t.minTTL)
	t.leases[id] = &tableEntry{ttl: ttl}
	return ttl, nil
}

// Revoke deletes lease id and detaches its keys, returning them sorted (nil
// if it had none) so the caller can delete them in one revision. It fails
// with ErrLeaseNotFound, changing nothing, if id is not live.
func (t *Table) Revoke(id ID) ([]string, error) {
	e, ok := t.leases[id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrLeaseNotFound, id)
	}
	keys := sortedKeys(e.keys)
	for _, k := range keys {
		delete(t.keyLease, k)
	}
	delete(t.leases, id)
	return keys, nil
}

// SetKeyLease records that key is now attached to lease id, detaching it
// from the lease it was attached to, if any. Use it on every put (with the
// put's lease, NoLease for none) and with NoLease when the key is deleted.
// It fails, changing nothing, with ErrLeaseNotFound if id is not NoLease
// and not live.
func (t *Table) SetKeyLease(key string, id ID) error {
	var to *tableEntry
	if id != NoLease {
		var ok bool
		if to, ok = t.leases[id]; !ok {
			return fmt.Errorf("%w: %d", ErrLeaseNotFound, id)
		}
	}
	old, attached := t.keyLease[key]
	if attached && old == id {
		return nil
	}
	if attached {
		// The key index and the lease's key set are kept in step, so the
		// old lease is live.
		from := t.leases[old]
		delete(from.keys, key)
		if len(from.keys) == 0 {
			from.keys = nil
		}
		delete(t.keyLease, key)
	}
	if to != nil {
		if to.keys == nil {
			to.keys = make(map[string]struct{})
		}
		to.keys[key] = struct{}{}
		t.keyLease[key] = id
	}
	return nil
}

// KeyLease returns the lease key is attached to, or NoLease.
func (t *Table) KeyLease(key string) ID { return t.keyLease[key] }

// Checkpoint records remaining seconds as lease id's remaining TTL, which a
// new leader starts the lease from. A remaining of 0 or less clears the
// checkpoint (a new leader then starts from the full TTL, as for a lease
// never checkpointed); a remaining above the TTL is lowered to the TTL. It
// fails with ErrLeaseNotFound, changing nothing, if id is not live: a
// checkpoint may be logged after the lease's revoke, so callers applying a
// batch of checkpoints should ignore that error.
func (t *Table) Checkpoint(id ID, remaining int64) error {
	e, ok := t.leases[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrLeaseNotFound, id)
	}
	e.remaining = min(max(remaining, 0), e.ttl)
	return nil
}

// Exists reports whether lease id is live.
func (t *Table) Exists(id ID) bool {
	_, ok := t.leases[id]
	return ok
}

// Lookup returns lease id and whether it is live.
func (t *Table) Lookup(id ID) (Lease, bool) {
	e, ok := t.leases[id]
	if !ok {
		return Lease{}, false
	}
	return Lease{ID: id, TTL: e.ttl, Remaining: e.remaining}, true
}

// Keys returns the keys attached to lease id, sorted; nil if it has none or
// is not live.
func (t *Table) Keys(id ID) []string {
	e, ok := t.leases[id]
	if !ok {
		return nil
	}
	return sortedKeys(e.keys)
}

// IDs returns the IDs of the live leases in ascending order.
func (t *Table) IDs() []ID {
	ids := make([]ID, 0, len(t.leases))
	for id := range t.leases {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Leases returns every live lease in ascending ID order; pass it to
// Expirer.Promote when this node becomes leader.
func (t *Table) Leases() []Lease {
	out := make([]Lease, 0, len(t.leases))
	for _, id := range t.IDs() {
		e := t.leases[id]
		out = append(out, Lease{ID: id, TTL: e.ttl, Remaining: e.remaining})
	}
	return out
}

// Len returns the number of live leases.
func (t *Table) Len() int { return len(t.leases) }

// sortedKeys returns the members of set in ascending byte order, nil if it
// is empty.
func sortedKeys(set map[string]struct{}) []string {
	if len(set) == 0 {
		return nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
