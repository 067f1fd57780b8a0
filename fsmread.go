package kvstore

import (
	"context"
	"time"

	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// The state machine's API to the rest of the node: what the node's reads,
// watches and the leader's lease loop need from it. Every method is safe
// to call from any goroutine, concurrently with apply. The rest of the
// node uses these methods, never the fsm's fields. The lease table's lock
// (leaseMu) is taken here, in apply (fsm.go) and in snapshot.go; the
// mvcc store, the watch hub and the lease deadlines are safe for
// concurrent use by their own contracts.

// revision returns the store's current revision.
func (f *fsm) revision() int64 { return f.kv.Revision() }

// rangeKeys serves a Get from the applied state.
func (f *fsm) rangeKeys(req *mvcc.RangeRequest) (*mvcc.RangeResult, error) {
	f.observe.metrics.ranged()
	return f.kv.Range(req)
}

// readTxn serves a read-only Txn from the applied state.
func (f *fsm) readTxn(req *mvcc.TxnRequest) (*mvcc.TxnResult, error) {
	res, err := f.kv.ReadTxn(req)
	f.observe.metrics.readTxn(res)
	return res, err
}

// storeStatus is the store's part of Status.
type storeStatus struct {
	Revision, CompactRevision int64
	Keys                      int
	Size                      int64
}

func (f *fsm) status() storeStatus {
	return storeStatus{Revision: f.kv.Revision(), CompactRevision: f.kv.CompactRevision(), Keys: f.kv.LiveKeys(), Size: f.kv.Size()}
}

// size returns the store's accounted size (mvcc.Store.Size).
func (f *fsm) size() int64 { return f.kv.Size() }

// hash hashes the store at rev (see mvcc.Store.Hash).
func (f *fsm) hash(rev int64) (uint32, error) { return f.kv.Hash(rev) }

// compactRevision returns the store's compact revision.
func (f *fsm) compactRevision() int64 { return f.kv.CompactRevision() }

// watch opens a watch on the applied changes.
func (f *fsm) watch(ctx context.Context, req watch.Request) (<-chan watch.Response, error) {
	return f.watches.Watch(ctx, req)
}

// requestProgress asks every up-to-date watch for a progress notification.
func (f *fsm) requestProgress() { f.watches.RequestProgress() }

// appliedIndex returns the index of the last log entry applied.
func (f *fsm) appliedIndex() uint64 { return f.applied.get() }

// waitApplied blocks until the entry at index has been applied, or ctx
// ends.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	return f.applied.wait(ctx, index)
}

// leaseIDs lists the live leases and the revision they were read at.
func (f *fsm) leaseIDs() ([]lease.ID, int64) {
	f.leaseMu.RLock()
	defer f.leaseMu.RUnlock()
	return f.leases.IDs(), f.kv.Revision()
}

// leaseInfo looks lease id up, with its keys when withKeys, and returns
// the revision it was read at; ok is false for no such lease.
func (f *fsm) leaseInfo(id lease.ID, withKeys bool) (l lease.Lease, keys []string, rev int64, ok bool) {
	f.leaseMu.RLock()
	defer f.leaseMu.RUnlock()
	l, ok = f.leases.Lookup(id)
	if ok && withKeys {
		keys = f.leases.Keys(id)
	}
	return l, keys, f.kv.Revision(), ok
}

// promoteLeases starts the leader's lease deadlines from the replicated
// table, each from its checkpointed remaining TTL, at least grace. Applies
// are held off meanwhile, so no grant or revoke slips between reading the
// table and tracking it.
func (f *fsm) promoteLeases(now time.Time, grace time.Duration) {
	f.leaseMu.RLock()
	defer f.leaseMu.RUnlock()
	f.expirer.Promote(now, f.leases.Leases(), grace)
}

// deadlines returns the leader's lease deadlines, which apply keeps in
// step with grants and revokes; the leader's lease loop reads them to
// renew, report, expire and checkpoint leases.
func (f *fsm) deadlines() *lease.Expirer { return f.expirer }

// activeAlarms lists the alarms in force, ordered by member then kind.
func (f *fsm) activeAlarms() []Alarm { return f.alarms.list() }

// alarmed reports whether an alarm of kind is in force, on any member.
func (f *fsm) alarmed(kind AlarmKind) bool { return f.alarms.has(kind) }

// alarmedFor reports whether member's alarm of kind is in force.
func (f *fsm) alarmedFor(member string, kind AlarmKind) bool { return f.alarms.hasFor(member, kind) }
