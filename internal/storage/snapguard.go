package storage

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
)

// SnapshotGuard stands between raft and a node's snapshot store while
// raft.NewRaft restores the newest usable snapshot at startup.
//
// raft tries the snapshots newest first and takes the first one that opens
// (the file store checks its CRC) and that the FSM restores; then it
// applies the log from that snapshot's index on. When the newest snapshot
// is damaged, the fallback is an older one, but the log was compacted up
// to the newest, so the entries right after the older one are gone and
// raft panics ("log not found") when it reaches them. The guard refuses,
// at startup, every snapshot the log does not continue, so NewRaft fails
// instead, and Started returns ErrCorruptSnapshot with the recovery to take.
// After startup it passes everything through: a snapshot installed from
// the leader replaces the log, and one sent to a follower needs no log.
type SnapshotGuard struct {
	raft.SnapshotStore
	logs raft.LogStore

	mu       sync.Mutex
	starting bool
	// problems lists, in raft's order, why each snapshot tried at
	// startup before the one restored was not used.
	problems []string
	tried    int
	lastID   string
}

// NewSnapshotGuard guards store, whose snapshots logs must continue, until
// Started is called.
func NewSnapshotGuard(store raft.SnapshotStore, logs raft.LogStore) *SnapshotGuard {
	return &SnapshotGuard{SnapshotStore: store, logs: logs, starting: true}
}

// Open implements raft.SnapshotStore.
func (g *SnapshotGuard) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.starting {
		return g.SnapshotStore.Open(id)
	}
	g.noteUnrestored()
	g.tried++
	g.lastID = id
	meta, rc, err := g.SnapshotStore.Open(id)
	if err != nil {
		g.problems = append(g.problems, fmt.Sprintf("snapshot %s: %v", id, err))
		return nil, nil, err
	}
	if err := g.continuedByLog(meta); err != nil {
		rc.Close()
		g.problems = append(g.problems, fmt.Sprintf("snapshot %s: %v", id, err))
		return nil, nil, err
	}
	return meta, rc, nil
}

// noteUnrestored records, when raft opened the last snapshot tried and
// then moved on, that the FSM could not restore it (its own checksums).
func (g *SnapshotGuard) noteUnrestored() {
	if g.tried > len(g.problems) {
		g.problems = append(g.problems, fmt.Sprintf("snapshot %s: opened but not restorable (the node's log says why)", g.lastID))
	}
}

// continuedByLog reports whether raft, having restored meta, finds in the
// log every entry it will apply next.
func (g *SnapshotGuard) continuedByLog(meta *raft.SnapshotMeta) error {
	first, err := g.logs.FirstIndex()
	if err != nil {
		return err
	}
	last, err := g.logs.LastIndex()
	if err != nil {
		return err
	}
	if last > meta.Index && first > meta.Index+1 {
		return fmt.Errorf("taken at index %d, but the log starts at %d: entries %d-%d are compacted away",
			meta.Index, first, meta.Index+1, first-1)
	}
	return nil
}

// Started ends the startup checks. Given NewRaft's error, it returns the
// error to report: ErrCorruptSnapshot when no snapshot was usable.
func (g *SnapshotGuard) Started(err error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.starting = false
	if err == nil {
		return nil
	}
	if g.tried == 0 {
		return fmt.Errorf("kvstore: starting raft: %w", err)
	}
	// raft v1.7.3 fails after opening a snapshot only when none restored
	// ("failed to load any existing snapshots"): once one restores, the
	// rest of NewRaft cannot fail for our (versioned) snapshots.
	g.noteUnrestored()
	return fmt.Errorf("%w: no snapshot can rebuild this member's state (%s; raft: %w). "+
		"Its data dir cannot be served: remove the member from its cluster (RemoveMember on another member), "+
		"wipe its data dir and add it again (Join); a single-member cluster restores from a backup",
		ErrCorruptSnapshot, strings.Join(g.problems, "; "), err)
}

var _ raft.SnapshotStore = (*SnapshotGuard)(nil)
