package kvstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A member whose disk is full cannot append to its raft log. hashicorp/raft
// answers that on a leader by failing the proposals and stepping down; the
// member would then win the next election (the others still vote for it),
// fail again on its first entry and step down, about once an election
// timeout, for as long as the disk stays full, with every write in between
// failing too. kvstore instead:
//
//   - fails the write with ErrNoSpace, which names the disk (raft's own
//     error said "unable to store logs within log store"). The entry was
//     not stored on the leader, and raft replicates only what its leader
//     stored, so the write certainly did not happen;
//   - stops the member from campaigning (its raft timeouts are raised out of
//     reach) while the disk refuses appends, so the healthy members elect a
//     leader among themselves, and refuses writes made through it at once;
//   - notices when the disk takes appends again, from the next append that
//     succeeds (a leader keeps sending the entries the member lacks) or from
//     a probe that writes and syncs a small file once a second, and then
//     restores its timeouts: it catches up and may lead again. A restart
//     after space is freed opens the log as usual.
//
// raft-wal is the exception to recovering in place: when the disk fills as
// it starts a new segment (it preallocates 64 MiB), it only logs the error,
// and its tail stays sealed, so it refuses every later append ("segment is
// sealed") until it is reopened. kvstore catches that error from raft-wal's
// log (walLogger), reports the cause with ErrNoSpace, and keeps the member
// out of elections until it is restarted with space freed; the restart
// opens the WAL, which starts the segment then.
//
// Nothing acknowledged is at risk: an acknowledged write is on a quorum.

// noCampaignTimeout replaces a member's raft heartbeat and election
// timeouts while its disk is full: long enough never to fire (raft draws a
// timeout between once and twice it), short enough not to overflow.
const noCampaignTimeout = 100 * 365 * 24 * time.Hour

// diskProbeInterval is how often a member whose disk was full checks
// whether it takes writes again.
const diskProbeInterval = time.Second

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

// diskGuard wraps a node's raft log store: it turns a full disk into
// ErrNoSpace and tells the node when its disk stops or starts taking
// appends. Its methods are called by raft's goroutines; full and changed
// are read by the node.
type diskGuard struct {
	raft.LogStore
	id    string
	hooks TestHooks
	// dir is where the probe writes ("" for in-memory storage, whose probe
	// only asks the test hook).
	dir string

	// rotation is raft-wal's failure to start a new segment (nil for other
	// stores): once set, appends fail until the member restarts.
	rotation *walRotation

	full atomic.Bool
	// changed receives a token whenever full changes (one slot: the reader
	// re-reads full).
	changed chan struct{}
}

func newDiskGuard(st *storage, id string, hooks TestHooks) *diskGuard {
	return &diskGuard{LogStore: st.logs, id: id, dir: st.raftDir, rotation: st.rotation, hooks: hooks, changed: make(chan struct{}, 1)}
}

// IsMonotonic passes on the wrapped store's answer: raft treats a
// monotonic store differently after a snapshot restore (DESIGN.md).
func (g *diskGuard) IsMonotonic() bool {
	m, ok := g.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// StoreLog implements raft.LogStore.
func (g *diskGuard) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore.
func (g *diskGuard) StoreLogs(logs []*raft.Log) error {
	err := g.hooks.beforeStoreLogs()
	if err == nil {
		err = g.LogStore.StoreLogs(logs)
	}
	if err == nil {
		if g.full.Load() { // a load, not a swap, on every append
			g.set(false)
		}
		return nil
	}
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

// set records whether the disk refuses appends.
func (g *diskGuard) set(full bool) {
	if g.full.Swap(full) != full {
		select {
		case g.changed <- struct{}{}:
		default:
		}
	}
}

// probe reports whether the disk takes a synced write again, and whether
// the log store does (raft-wal not before a restart, after a failed
// rotation).
func (g *diskGuard) probe() error {
	if err := g.hooks.beforeStoreLogs(); err != nil {
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

// errNoSpace is the error of a write made through a member whose disk is
// full: refused before anything is sent, so it certainly did not happen.
func (n *Node) errNoSpace() error {
	if err := n.disk.rotation.failure(); err != nil {
		return fmt.Errorf("%w: member %s cannot start a new raft-wal segment (%v); write through another member, or free space and restart this one", ErrNoSpace, n.cfg.id, err)
	}
	return fmt.Errorf("%w: member %s cannot persist its raft log; write through another member or free space", ErrNoSpace, n.cfg.id)
}

// runDiskWatch is the goroutine that follows the disk guard: while the disk
// refuses appends it keeps raft from campaigning and probes the disk; when
// it takes them again it restores raft's timeouts.
func (n *Node) runDiskWatch() {
	campaigning := true
	var probe <-chan time.Time
	for {
		select {
		case <-n.closed:
			return
		case <-n.disk.changed:
		case <-probe:
			if err := n.disk.probe(); err == nil {
				n.disk.set(false)
			}
		}
		full := n.disk.full.Load()
		if full == !campaigning {
			if full {
				probe = time.After(diskProbeInterval)
			}
			continue
		}
		rc := n.raft.ReloadableConfig()
		if full {
			rc.HeartbeatTimeout, rc.ElectionTimeout = noCampaignTimeout, noCampaignTimeout
			n.logger().Error("the disk refuses appends to the raft log: this member stops campaigning and refuses writes until it takes them again",
				"member", n.cfg.id)
			probe = time.After(diskProbeInterval)
		} else {
			rc.HeartbeatTimeout, rc.ElectionTimeout = n.cfg.heartbeatTimeout, n.cfg.electionTimeout
			n.logger().Info("the disk takes appends to the raft log again: this member campaigns and serves writes again",
				"member", n.cfg.id)
			probe = nil
		}
		if err := n.raft.ReloadConfig(rc); err != nil {
			n.logger().Error("changing raft timeouts for the disk's state", "member", n.cfg.id, "error", err)
			continue
		}
		campaigning = !full
	}
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

// walLogger is the logger kvstore hands raft-wal: it passes every line on and
// keeps the error of a failed segment rotation.
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
