package kvtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kvstore/kvstore"
)

// Fault injection beyond the network's (Partition, Isolate, Cut, Heal) and
// Stop/Restart: leadership transfer, membership churn, forced snapshots, a
// slow apply, a full disk, a jumped clock and a corrupt store on one member. The robustness suite
// (internal/robustness) draws its faults from these; they are ordinary
// exported methods so that users' tests can do the same.
//
// The clock offset, the apply delay, the full disk and the store corruption are installed in every node through
// kvstore.WithTestHooks; a test that passes its own WithTestHooks through
// WithNodeOptions replaces them.

// memberFaults is one member's clock offset and apply delay, read by its
// node's hooks on the node's goroutines, set from the test goroutine.
type memberFaults struct {
	clockOffset atomic.Int64 // nanoseconds added to the lease clock
	applyDelay  atomic.Int64 // nanoseconds slept before each applied entry
	diskFull    atomic.Bool  // appends to the raft log fail with ENOSPC
	diskLatency atomic.Int64 // nanoseconds each append to the raft log takes
	// store is bound to the member's node at each Open; onRestart is a
	// corruption to make through it while the next Open replays the log.
	store     kvstore.StoreFault
	onRestart atomic.Pointer[overwrite]
}

// overwrite is a value to put in place of a key's current one.
type overwrite struct{ key, value []byte }

func (f *memberFaults) hooks() kvstore.TestHooks {
	return kvstore.TestHooks{
		Now: func() time.Time { return time.Now().Add(time.Duration(f.clockOffset.Load())) },
		BeforeApply: func(uint64) {
			if d := time.Duration(f.applyDelay.Load()); d > 0 {
				time.Sleep(d)
			}
			if o := f.onRestart.Load(); o != nil && f.store.OverwriteValue(o.key, o.value) == nil {
				f.onRestart.CompareAndSwap(o, nil)
			}
		},
		Store: &f.store,
		BeforeStoreLogs: func() error {
			if f.diskFull.Load() {
				return &os.PathError{Op: "write", Path: "raft log (kvtest.SetDiskFull)", Err: syscall.ENOSPC}
			}
			return nil
		},
		DuringStoreLogs: func() {
			if d := time.Duration(f.diskLatency.Load()); d > 0 {
				time.Sleep(d)
			}
		},
	}
}

// SetDiskFull makes every append to member i's raft log fail as on a full
// disk (ENOSPC), from now on and across restarts, until it is called with
// false. The member's writes fail with kvstore.ErrNoSpace, it stops
// campaigning, and it recovers by itself once the disk is "freed".
func (c *Cluster) SetDiskFull(i int, full bool) {
	c.members[i].faults.diskFull.Store(full)
}

// SetDiskLatency makes every append to member i's raft log take d longer,
// as on a slow disk, from now on and across restarts; 0 puts it back.
// In testing/synctest's virtual time a write's latency is then exact: on
// a 3-member cluster with latency d on every member a write takes about d,
// the leader's append and a follower's overlapping, not 2d.
func (c *Cluster) SetDiskLatency(i int, d time.Duration) {
	c.members[i].faults.diskLatency.Store(int64(d))
}

// SetClockOffset makes member i's lease clock run d ahead of the real (or
// virtual) clock, from now on and across restarts; 0 puts it back. A
// leader whose clock jumps forward past a lease's deadline revokes the
// lease early, as an etcd leader would. Raft's timers are not affected.
func (c *Cluster) SetClockOffset(i int, d time.Duration) {
	c.members[i].faults.clockOffset.Store(int64(d))
}

// SetApplyDelay makes member i sleep d before applying each log entry,
// from now on and across restarts; 0 puts it back. The member falls behind
// the others without being cut off from them.
func (c *Cluster) SetApplyDelay(i int, d time.Duration) {
	c.members[i].faults.applyDelay.Store(int64(d))
}

// CorruptValue overwrites, in running member i's in-memory store, the
// value of key's current version with value, keeping its revisions
// (kvstore.StoreFault): the member's reads return it and its hash no
// longer matches the others', which its corruption checks find. It is
// kvstore.ErrKeyNotFound if the key has no current version there. The
// damage lasts until the member restarts (which rebuilds its store from
// its log and snapshot) or is repaired.
func (c *Cluster) CorruptValue(i int, key, value []byte) error {
	m := c.members[i]
	if m.node == nil {
		return fmt.Errorf("kvtest: %s is stopped", m.peer.ID)
	}
	return m.faults.store.OverwriteValue(key, value)
}

// CorruptOnRestart makes the next Restart of stopped member i corrupt its
// store while it rebuilds it: before the first log entry it replays after
// key exists in its store, key's current value is overwritten with value,
// as CorruptValue does. So the member starts with corrupt state, for its
// initial corruption check to find.
func (c *Cluster) CorruptOnRestart(i int, key, value []byte) {
	c.t.Helper()
	if c.members[i].node != nil {
		c.t.Fatalf("kvtest: %s is running", c.members[i].peer.ID)
	}
	c.members[i].faults.onRestart.Store(&overwrite{key: bytes.Clone(key), value: bytes.Clone(value)})
}

// Snapshot makes node i take a raft snapshot now and truncate its log
// (kvstore.Node.Snapshot). With WithNodeOptions(kvstore.WithTrailingLogs(n))
// for a small n, a follower that lags by more than n entries must then
// install the leader's snapshot.
func (c *Cluster) Snapshot(i int) error {
	m := c.members[i]
	if m.node == nil {
		return fmt.Errorf("kvtest: %s is stopped", m.peer.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	return m.node.Snapshot(ctx)
}

// TransferLeader asks the cluster, through any running member, to hand
// leadership to node i, and returns once the transfer is done or failed.
func (c *Cluster) TransferLeader(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	via := c.runningOther(-1)
	if via == nil {
		return fmt.Errorf("kvtest: no running member")
	}
	return via.TransferLeadership(ctx, c.members[i].peer.ID)
}

// RemoveAndReAdd removes member i from the cluster (through another
// running member), stops it, wipes its state, starts it again empty and
// adds it back as a voter under the same ID and address, as an operator
// replaces a failed machine. The member catches up from the leader's log
// or snapshot. Network faults are left as they are.
func (c *Cluster) RemoveAndReAdd(i int) error {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	m := c.members[i]
	via := c.runningOther(i)
	if via == nil {
		return fmt.Errorf("kvtest: no other running member to remove %s through", m.peer.ID)
	}
	if err := via.RemoveMember(ctx, m.peer.ID); err != nil {
		return fmt.Errorf("kvtest: removing %s: %w", m.peer.ID, err)
	}
	if m.node != nil {
		c.Stop(i)
	}
	m.storage = kvstore.NewMemoryStorage()
	if c.cfg.disk {
		m.dir = filepath.Join(c.t.TempDir(), m.peer.ID)
	}
	c.start(i)
	if err := via.AddVoter(ctx, m.peer.ID, m.peer.Address); err != nil {
		return fmt.Errorf("kvtest: adding %s back: %w", m.peer.ID, err)
	}
	return nil
}

// runningOther returns a running node other than member skip, preferring
// the leader as this node knows it; nil if there is none.
func (c *Cluster) runningOther(skip int) *kvstore.Node {
	var any *kvstore.Node
	for j, m := range c.members {
		if j == skip || m.node == nil {
			continue
		}
		if m.node.IsLeader() {
			return m.node
		}
		if any == nil {
			any = m.node
		}
	}
	return any
}
