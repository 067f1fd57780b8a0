package kvstore

import (
	"errors"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Open rebuilds a node's state from its newest snapshot and then replays
// every log entry applied after it. raft snapshots after
// WithSnapshots' threshold of entries (8,192 by default), so a node closed
// after a bulk load can have its whole keyspace in the log: 1M keys loaded
// in txns of 100 puts were 10,000 entries and no snapshot, and the next
// Open replayed 290 MB of commands, 3.5 times as long as restoring the same
// state from a snapshot (mvcc's decoder bulk-loads the sorted keys).
//
// So Close takes a snapshot first when the log since the newest one is
// long: when replaying it would cost about as much as writing the snapshot
// now and restoring it at the next Open, or more. Both are proportional to
// bytes: the replay to the command bytes applied since the snapshot, the
// snapshot to the store's size. At 1M keys (290 MB either way) the replay
// took ~5 s, the snapshot at Close ~1.7 s and its restore 1–2 s, so a
// replay of half the store's size breaks even and a longer one is cheaper
// as a snapshot. Below closeSnapshotMinBytes the replay takes a fraction
// of a second and Close does not wait for a snapshot. A crash skips it, of
// course: what Open replays then is bounded by raft's own threshold only.

// closeSnapshotMinBytes is the replay below which Close takes no snapshot.
const closeSnapshotMinBytes = 16 << 20

// replayBytes counts the command bytes applied since the newest snapshot
// raft persisted: about what the next Open would replay. Apply adds (FSM
// goroutine), a persisted snapshot subtracts what it covered (raft's
// snapshot goroutine) and a restore resets; Close reads. Safe for
// concurrent use.
type replayBytes struct{ n atomic.Int64 }

// applied counts an applied entry of n bytes.
func (r *replayBytes) applied(n int) { r.n.Add(int64(n)) }

// persisted subtracts what a persisted snapshot covered: the count taken
// when its state was captured.
func (r *replayBytes) persisted(covered int64) { r.n.Add(-covered) }

// reset is for a restored snapshot: the state is the snapshot's, nothing
// after it applied yet.
func (r *replayBytes) reset() { r.n.Store(0) }

func (r *replayBytes) get() int64 { return r.n.Load() }

// snapshotWorthIt reports whether a snapshot at Close pays for itself by
// the measure above, for a replay of replay bytes over a store of size
// bytes.
func snapshotWorthIt(replay, size int64) bool {
	return replay >= closeSnapshotMinBytes && replay >= size/2
}

// snapshotBeforeClose takes a raft snapshot if the next Open would
// otherwise replay a long log (above). It runs in Close after calls have
// stopped and before raft shuts down; a member that was removed has no
// next Open and takes none. Failing to take it only leaves the log to
// replay, so the error is logged, not returned.
func (n *Node) snapshotBeforeClose() {
	if n.removed.Load() || n.raft.State() == raft.Shutdown {
		return
	}
	replay := n.fsm.sinceSnapshot.get()
	if !snapshotWorthIt(replay, n.fsm.kv.Size()) {
		return
	}
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		n.logger().Warn("snapshot before close failed; the next open replays the log instead",
			"member", n.cfg.id, "replay_bytes", replay, "error", err)
	}
}
