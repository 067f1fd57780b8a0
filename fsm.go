package kvstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// fsm is the raft state machine: it decodes log commands and applies them to
// the mvcc store and the lease table, identically on every member.
//
// Threading (hashicorp/raft's contract): ApplyBatch, Apply, Snapshot and
// Restore are called from raft's single FSM goroutine and never overlap;
// the FSMSnapshot's Persist runs on another goroutine, concurrently with
// later applies, which is why Snapshot captures everything it needs up front.
// The rest of the node reads through the methods in fsmread.go, which are
// safe for concurrent use with apply; none of it touches these fields.
type fsm struct {
	kv *mvcc.Store
	// minTTL is the lease TTL floor, part of the cluster's configuration
	// (the same on every member).
	minTTL int64

	// leaseMu guards leases: apply holds it for writing for each command,
	// readers take it for reading.
	leaseMu sync.RWMutex
	leases  *lease.Table
	// expirer is the leader's deadline tracker, kept in step with grants
	// and revokes; it ignores them on a follower. It never influences the
	// replicated state.
	expirer *lease.Expirer

	applied appliedIndex
	// sinceSnapshot counts what the next Open would replay (closesnapshot.go).
	sinceSnapshot replayBytes
	// restores counts the snapshots restored into the state (Restore), so
	// that what was computed from the state before one is known stale.
	restores atomic.Uint64

	// compacted is the revision and done channel of the latest applied
	// compaction, for Compact WithCompactPhysical.
	compactMu     sync.Mutex
	compactedRev  int64
	compactedFree <-chan struct{}

	// alarms are the active alarms (alarm.go).
	alarms alarmSet
	// memberAttrs are the members' published attributes (memberattrs.go).
	memberAttrs memberAttrSet
	// auth is the auth state (auth.go); changed under leaseMu like the
	// rest of apply, and safe for concurrent reads.
	auth *auth.Store

	// afterBatch, when set, is called after each applied batch (the
	// node's nudger, nudge.go); set before raft starts, it must not block.
	afterBatch func()

	// watches hears of every applied change before it is acknowledged
	// (watch package's threading contract: apply goroutine only).
	watches *watch.Hub
	// notify gathers the current ApplyBatch's changes for watches (apply
	// goroutine only).
	notify watch.Batch

	// hooks are the node's test seams: the lease clock (read for the
	// leader's deadlines only, never for what apply writes) and a hook run
	// before each entry is applied.
	hooks TestHooks
	// observe counts what apply does and reports slow entries (observe.go).
	observe applyWatch
}

// applyResult is what applying one command returns through raft's
// ApplyFuture.Response. Err holds a rejection (a typed mvcc or lease error,
// or wire.ErrBadCommand); it is a value, the same on every member, not a failure
// of the state machine.
type applyResult struct {
	Revision int64
	Put      *mvcc.PutResult
	Delete   *mvcc.DeleteResult
	Txn      *mvcc.TxnResult
	// LeaseTTL is the granted TTL of a lease grant.
	LeaseTTL int64
	// Events are the changes the command made, in order.
	Events []mvcc.Event
	Err    error
}

func newFSM(minTTL int64, maxTxnOps int, watchCfg watch.Config) *fsm {
	f := &fsm{minTTL: minTTL, leases: lease.NewTable(minTTL), expirer: lease.NewExpirer(0), auth: auth.New()}
	f.kv = mvcc.New(mvcc.Config{MaxTxnOps: maxTxnOps, CheckLease: f.checkLease})
	f.watches = watch.NewHub(f.kv, watchCfg)
	f.applied.init()
	return f
}

// compactionDone returns a channel closed once the history below rev has
// been freed here: that of the latest compaction, which covers rev once a
// compaction at rev or later has been applied.
func (f *fsm) compactionDone(rev int64) <-chan struct{} {
	f.compactMu.Lock()
	defer f.compactMu.Unlock()
	if f.compactedFree == nil || f.compactedRev < rev {
		done := make(chan struct{})
		close(done) // nothing of rev's is being freed here (restored from a snapshot)
		return done
	}
	return f.compactedFree
}

// close ends every watch and closes the store; raft must have stopped.
func (f *fsm) close() error {
	f.watches.Close()
	return f.kv.Close()
}

// checkLease runs inside apply, under leaseMu held by the apply goroutine
// itself, so it reads the table without locking.
func (f *fsm) checkLease(id int64) error {
	if !f.leases.Exists(lease.ID(id)) {
		return lease.ErrLeaseNotFound
	}
	return nil
}

// ApplyBatch implements raft.BatchingFSM. The result slice has one entry per
// log, nil for entries that are not commands (configuration, barriers).
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	applied := f.applied.get()
	last := applied
	for i, l := range logs {
		if l.Index <= applied {
			continue // already applied: see Restore, after an older snapshot
		}
		start := f.observe.start()
		f.hooks.beforeApply(l.Index)
		if l.Type == raft.LogCommand {
			res := f.applyObserved(l, start)
			if res.Err != nil && errors.Is(res.Err, wire.ErrCorruptCommand) {
				// This replica's copy of a committed entry is damaged:
				// applying it, or rejecting it, would diverge from the
				// other members. Stop, as etcd does on a corrupt WAL; Open
				// then refuses the log (ErrCorruptLog).
				panic(fmt.Sprintf("kvstore: raft log entry %d is corrupt (%v); wipe this member's data and join it again", l.Index, res.Err))
			}
			out[i] = res
			f.sinceSnapshot.applied(len(l.Data))
		}
		f.applyConfiguration(l)
		last = l.Index
	}
	// The watches hear of the whole batch at once (one response per watch,
	// not one per revision: see watch.Batch), before the applied index that
	// readers wait on moves past it and before raft acknowledges any of it.
	responses := f.watches.NotifyBatch(&f.notify)
	f.notify.Reset()
	if responses > 0 && responses <= yieldAfterResponses {
		// Let the consumers just handed a response run now: each sits in
		// this processor's run queue, and whatever this goroutine wakes
		// next (readers of the applied index, the nudger, the writer woken
		// by raft's acknowledgement), each waking the next goroutine of
		// its chain, would otherwise run ahead of it (one watcher, one
		// writer: p99 from the acknowledgement to the consumer 1.3 ms ->
		// 0.16 ms; BENCHMARKS.md, "A yield after a delivery to a few
		// watches").
		runtime.Gosched()
	}
	f.applied.set(last)
	if f.afterBatch != nil {
		f.afterBatch()
	}
	return out
}

// yieldAfterResponses is the most watch responses after which an apply
// batch yields its processor to their consumers. Each consumer's turn is
// time the acknowledgement waits (about 1 µs), so a delivery to many
// watches does not yield: at 1,000 watchers that wait cost a put 45%.
const yieldAfterResponses = 16

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f *fsm) applyCommand(data []byte) *applyResult {
	c, err := wire.DecodeCommand(data)
	if err != nil {
		return &applyResult{Revision: f.kv.Revision(), Err: err}
	}
	if err := f.alarms.refuse(c); err != nil {
		return &applyResult{Revision: f.kv.Revision(), Err: err}
	}
	if err := refuseStaleAuth(f.auth, c); err != nil {
		return &applyResult{Revision: f.kv.Revision(), Err: err}
	}
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	res := &applyResult{}
	switch c.Kind {
	case wire.CmdPut:
		res.Put, res.Events, res.Err = f.kv.Put(c.Put.Request())
	case wire.CmdDelete:
		res.Delete, res.Events, res.Err = f.kv.DeleteRange(c.Delete.Request())
	case wire.CmdTxn:
		res.Txn, res.Events, res.Err = f.kv.Txn(c.Txn.Request())
	case wire.CmdCompact:
		var free <-chan struct{}
		if free, res.Err = f.kv.Compact(c.Revision); res.Err == nil {
			f.notify.Compacted(c.Revision)
			f.compactMu.Lock()
			f.compactedRev, f.compactedFree = c.Revision, free
			f.compactMu.Unlock()
		}
	case wire.CmdLeaseGrant:
		res.LeaseTTL, res.Err = f.leases.Grant(lease.ID(c.LeaseID), c.TTL)
		if res.Err == nil {
			// The leader's local clock, for its deadline only.
			f.expirer.Add(lease.ID(c.LeaseID), res.LeaseTTL, f.hooks.now())
		}
	case wire.CmdLeaseRevoke:
		var keys []string
		if keys, res.Err = f.leases.Revoke(lease.ID(c.LeaseID)); res.Err == nil {
			f.expirer.Remove(lease.ID(c.LeaseID))
			raw := make([][]byte, len(keys))
			for i, k := range keys {
				raw[i] = []byte(k)
			}
			_, res.Events, res.Err = f.kv.DeleteKeys(raw)
		}
	case wire.CmdAlarm:
		f.alarms.apply(c.Alarm)
	case wire.CmdMemberAttrs:
		f.memberAttrs.apply(c.MemberAttrs)
	case wire.CmdAuth:
		res.Err = applyAuth(f.auth, c.Auth)
	case wire.CmdLeaseCheckpoint:
		for _, cp := range c.Checkpoints {
			// A checkpoint of a lease revoked meanwhile is moot.
			_ = f.leases.Checkpoint(lease.ID(cp.ID), cp.Remaining)
		}
	}
	f.trackLeases(res.Events)
	res.Revision = f.kv.Revision()
	f.notify.Add(res.Revision, res.Events)
	return res
}

// trackLeases keeps the table's key attachments in step with the writes: a
// put attaches its key to its lease (or none), a delete detaches it.
func (f *fsm) trackLeases(events []mvcc.Event) {
	for i := range events {
		id := lease.NoLease
		if events[i].Type == mvcc.EventPut {
			id = lease.ID(events[i].KV.Lease)
		}
		if id == lease.NoLease && f.leases.KeyLease(string(events[i].KV.Key)) == lease.NoLease {
			continue // nothing to change (and no key string to build)
		}
		// The lease was checked by the put itself; a failure here would
		// mean the table and the store disagree, which must stop the node
		// rather than let replicas diverge.
		if err := f.leases.SetKeyLease(string(events[i].KV.Key), id); err != nil {
			panic("kvstore: lease table out of step with the store: " + err.Error())
		}
	}
}

// appliedIndex is the raft index the FSM has applied, with a way to wait
// for it (raft's own AppliedIndex counts entries handed to the FSM
// goroutine, not applied ones).
type appliedIndex struct {
	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed and replaced on every advance
}

func (a *appliedIndex) init() { a.changed = make(chan struct{}) }

func (a *appliedIndex) set(i uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i > a.index {
		a.index = i
		close(a.changed)
		a.changed = make(chan struct{})
	}
}

// reset sets the index after a snapshot restore, which may move it back
// (a node restored to an older snapshot) as well as forward.
func (a *appliedIndex) reset(i uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.index = i
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *appliedIndex) get() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index
}

// wait blocks until the applied index reaches i or ctx ends.
func (a *appliedIndex) wait(ctx context.Context, i uint64) error {
	for {
		a.mu.Lock()
		index, changed := a.index, a.changed
		a.mu.Unlock()
		if index >= i {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
