package kvstore

import (
	"context"
	"fmt"

	"github.com/kvstore/kvstore/internal/wire"
)

// The quota, etcd's --quota-backend-bytes. The figure it bounds is the
// store's accounted size, mvcc.Store.Size, which Status reports as
// StoreSize: the key and value bytes of every version held (live keys and
// the history kept since the last compaction, tombstones included) plus a
// fixed overhead per key and per version. Compaction lowers it as the
// compacted versions are freed.
//
// The member that serves a write checks it, as etcd's does: a write that
// adds data (Put, a Txn with a put in either branch, Grant) whose cost —
// the size of its log entry, an estimate of what it adds — would take the
// store to the quota or past it (etcd admits a write only while size plus
// cost stays below) is refused with ErrDatabaseSpaceExceeded, and the
// member raises a NOSPACE alarm in its own name through raft. From the
// alarm's log entry on, every member refuses such writes in apply (the
// alarm is in the log, so all of them agree where it starts), while
// reads, deletes, Compact, Revoke, lease renewals and membership changes
// go on. Sizes are compared on the serving member only, never in apply:
// physical compaction frees memory at each member's own pace, and the
// quota is a member's option, so neither may decide what apply does.
//
// Writes checked concurrently, before the alarm is applied, may each pass:
// the store can end up past the quota by what those writes add, as in
// etcd.

// DefaultQuotaBytes is the default quota: etcd's 2 GiB.
const DefaultQuotaBytes int64 = 2 << 30

// WithQuotaBytes sets the store's quota in bytes, as etcd's
// --quota-backend-bytes: zero means DefaultQuotaBytes, a negative value
// turns the quota off (no NOSPACE alarm is raised by this member; one
// raised by another member is still obeyed). Give every member the same
// quota, as etcd's operators do: the alarm of the member with the smallest
// one stops writes on all of them.
func WithQuotaBytes(n int64) Option {
	return func(c *config) error {
		c.quotaBytes = n
		return nil
	}
}

// quota returns the quota in bytes, or -1 when it is off.
func (c *config) quota() int64 {
	switch {
	case c.quotaBytes == 0:
		return DefaultQuotaBytes
	case c.quotaBytes < 0:
		return -1
	}
	return c.quotaBytes
}

// addsData reports whether c is a write the quota and the NOSPACE alarm
// refuse: one that can grow the store.
func addsData(c *wire.Command) bool {
	switch c.Kind {
	case wire.CmdPut, wire.CmdLeaseGrant:
		return true
	case wire.CmdTxn:
		return txnPuts(c.Txn)
	}
	return false
}

// txnPuts reports whether t has a put in either branch, nested txns
// included (etcd charges a txn for the puts of both branches).
func txnPuts(t *wire.Txn) bool {
	for _, list := range [][]wire.Op{t.Then, t.Else} {
		for _, op := range list {
			if op.Put != nil || (op.Txn != nil && txnPuts(op.Txn)) {
				return true
			}
		}
	}
	return false
}

// checkQuota runs before c, cost bytes in the log, is proposed through
// this member: nil when it may be, else ErrDatabaseSpaceExceeded, after
// raising a NOSPACE alarm if the write is the one that found the store
// full.
func (n *Node) checkQuota(ctx context.Context, c *wire.Command, cost int) error {
	if !addsData(c) {
		return nil
	}
	if n.fsm.alarmed(AlarmNoSpace) {
		// Apply would refuse it, unless this member has not yet applied
		// a disarm another member served: catch up first (one read-index
		// round, only while alarmed), so a write right after a disarm is
		// not refused on stale state.
		if err := n.readIndex(ctx); err != nil {
			return err
		}
		if n.fsm.alarmed(AlarmNoSpace) {
			return errSpaceExceeded // spare the proposal
		}
	}
	quota := n.cfg.quota()
	if size := n.fsm.size(); quota > 0 && size+int64(cost) >= quota {
		return n.raiseNoSpace(ctx, size, cost)
	}
	return nil
}

// raiseNoSpace raises a NOSPACE alarm in this member's name for a store of
// size bytes (a write of cost bytes did not fit, or none for a disarm that
// found the store over quota) and returns the caller's error:
// ErrDatabaseSpaceExceeded, with the raise's own failure if the alarm
// could not be proposed.
func (n *Node) raiseNoSpace(ctx context.Context, size int64, cost int) error {
	what := fmt.Sprintf("a write of %d bytes does not fit", cost)
	if cost == 0 {
		what = "still over quota after the disarm"
	}
	err := fmt.Errorf("%w: store %d bytes, quota %d bytes, %s (member %s raised a NOSPACE alarm)",
		ErrDatabaseSpaceExceeded, size, n.cfg.quota(), what, n.cfg.id)
	if _, raiseErr := n.propose(ctx, alarmCommand(wire.AlarmActivate, n.cfg.id, AlarmNoSpace)); raiseErr != nil {
		return fmt.Errorf("%w; raising the alarm failed: %v", err, raiseErr)
	}
	n.logger().Warn("the store reached its quota: NOSPACE alarm raised; writes that add data are refused until it is compacted and the alarm disarmed",
		"member", n.cfg.id, "size", size, "quota", n.cfg.quota())
	return err
}
