package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// diskProbeSize is how much the probe writes and syncs: room for a few
// batches of entries (a new raft-wal segment needs more, 64 MiB; if that is
// still missing the next append fails and the member waits again).
const diskProbeSize = 1 << 20

// isNoSpace reports whether err is the operating system refusing a write for
// lack of space (ENOSPC, or EDQUOT, a user's quota). raft's LogCache quotes
// the store's error as text instead of wrapping it, hence the text check.
func isNoSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// DiskGuard wraps a node's raft log store: it turns a full disk into
// ErrNoSpace and tells the node when its disk stops or starts taking
// appends. An append refused for lack of space certainly did not happen:
// raft replicates only what its leader stored, and the guard hands an
// append to its early sender (SetEarlySend) only once the disk checks it
// knows of passed. An append that fails after the early sender sent it on
// may still be committed by the members that took it: its error wraps
// ErrSentUnstored, not ErrNoSpace.
//
// raft-wal is the exception to recovering in place: when the disk fills as
// it starts a new segment (it preallocates 64 MiB), it only logs the error,
// and its tail stays sealed, so it refuses every later append ("segment is
// sealed") until it is reopened. The guard reads that error off raft-wal's
// log (walLogger), reports the cause with ErrNoSpace, and stays full until
// the member restarts with space freed.
//
// Its raft.LogStore methods are called by raft's goroutines; Full, Changed,
// Probe and RotationFailure by the node's, concurrently.
type DiskGuard struct {
	raft.LogStore
	id string
	// before is called before each append and probe; a non-nil error
	// fails it (a test's injected disk failure). Nil for none.
	before func() error
	// during is called while an append is written, after it may have been
	// sent early (a test's slow disk). Nil for none.
	during func()
	// early, if set, is offered every append that passed the checks, just
	// before it is written; it reports whether it sent the entries on.
	early func(logs []*raft.Log) bool
	// dir is where the probe writes ("" for in-memory storage, whose probe
	// only asks before).
	dir string

	// rotation is raft-wal's failure to start a new segment (nil for other
	// stores): once set, appends fail until the member restarts.
	rotation *walRotation

	full atomic.Bool
	// changed receives a token whenever full changes (one slot: the reader
	// re-reads full).
	changed chan struct{}
}

// NewDiskGuard wraps st.Logs for the member id (named in its errors);
// before, if not nil, runs before every append and probe; during, if not
// nil, runs within every append, after the early send.
func NewDiskGuard(st *Storage, id string, before func() error, during func()) *DiskGuard {
	return &DiskGuard{LogStore: st.Logs, id: id, dir: st.raftDir, rotation: st.rotation, before: before, during: during, changed: make(chan struct{}, 1)}
}

// SetEarlySend installs the function offered each append the disk checks
// let through, on raft's goroutine, just before the append is written; it
// reports whether it sent the entries to other members. It must be called
// before raft starts and must not block on the network.
func (g *DiskGuard) SetEarlySend(send func(logs []*raft.Log) bool) { g.early = send }

// Full reports whether the disk refused the latest append or probe.
func (g *DiskGuard) Full() bool { return g.full.Load() }

// Changed receives a token when Full's answer changes; read Full again on
// each (changes in between are coalesced).
func (g *DiskGuard) Changed() <-chan struct{} { return g.changed }

// RotationFailure returns raft-wal's failure to start a new segment, after
// which its log takes no appends until the member restarts; nil if none.
func (g *DiskGuard) RotationFailure() error { return g.rotation.failure() }

// IsMonotonic passes on the wrapped store's answer: raft treats a
// monotonic store differently after a snapshot restore (DESIGN.md).
func (g *DiskGuard) IsMonotonic() bool {
	m, ok := g.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// StoreLog implements raft.LogStore.
func (g *DiskGuard) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore.
func (g *DiskGuard) StoreLogs(logs []*raft.Log) error {
	err := g.runBefore()
	sent := false
	if err == nil {
		// A sealed raft-wal tail refuses the append for certain: do not
		// let it reach other members first.
		if g.early != nil && g.rotation.failure() == nil {
			sent = g.early(logs)
		}
		if g.during != nil {
			g.during()
		}
		err = g.LogStore.StoreLogs(logs)
	}
	if err == nil {
		if g.full.Load() { // a load, not a swap, on every append
			g.set(false)
		}
		return nil
	}
	if sent {
		return fmt.Errorf("%w: %v", ErrSentUnstored, g.failed(err))
	}
	return g.failed(err)
}

// failed turns the error of an append that failed into the guard's, and
// records whether the disk is full.
func (g *DiskGuard) failed(err error) error {
	if rotateErr := g.rotation.failure(); rotateErr != nil {
		g.set(true)
		if isNoSpace(rotateErr) {
			return fmt.Errorf("%w: member %s cannot start a new raft-wal segment (%v); free space, then restart the member", ErrNoSpace, g.id, rotateErr)
		}
		return fmt.Errorf("kvstore: member %s cannot start a new raft-wal segment (%v), so its raft log takes no appends until it restarts", g.id, rotateErr)
	}
	if isNoSpace(err) {
		g.set(true)
		return fmt.Errorf("%w: member %s cannot append to its raft log: %v", ErrNoSpace, g.id, err)
	}
	return err
}

func (g *DiskGuard) runBefore() error {
	if g.before == nil {
		return nil
	}
	return g.before()
}

// set records whether the disk refuses appends.
func (g *DiskGuard) set(full bool) {
	if g.full.Swap(full) != full {
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}
}

// Probe checks whether the disk takes a synced write again, and the log
// store appends (raft-wal not before a restart, after a failed rotation).
// If so, the guard is no longer Full.
func (g *DiskGuard) Probe() error {
	if err := g.probe(); err != nil {
		return err
	}
	g.set(false)
	return nil
}

func (g *DiskGuard) probe() error {
	if err := g.runBefore(); err != nil {
		return err
	}
	if err := g.rotation.failure(); err != nil {
		return err
	}
	if g.dir == "" {
		return nil
	}
	path := filepath.Join(g.dir, ".space-probe")
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, diskProbeSize))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// walRotation records raft-wal's failure to start a new segment. raft-wal
// only logs that error ("rotate error") and leaves its tail sealed, after
// which every append fails with "segment is sealed", not saying why.
type walRotation struct {
	err atomic.Pointer[error]
}

// failure returns the recorded error, if any; r may be nil.
func (r *walRotation) failure() error {
	if r == nil {
		return nil
	}
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}

// walLogger is the logger storage hands raft-wal: it passes every line on
// and keeps the error of a failed segment rotation.
type walLogger struct {
	hclog.Logger
	rotation *walRotation
}

// Error implements hclog.Logger.
func (l walLogger) Error(msg string, args ...any) {
	if msg == "rotate error" {
		err := fmt.Errorf("raft-wal: %s", msg)
		for i := 0; i+1 < len(args); i += 2 {
			if e, ok := args[i+1].(error); ok {
				err = e
			}
		}
		l.rotation.err.Store(&err)
	}
	l.Logger.Error(msg, args...)
}
