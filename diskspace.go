package kvstore

import (
	"fmt"
	"time"
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
//     not stored on the leader, and an append the disk guard refuses is not
//     sent to the followers either, so the write certainly did not happen.
//     (An append that fails while it is written, after the leader sent it
//     on, is ErrOutcomeUnknown: eagerappend.go. raft-wal preallocates its
//     segments, so its full disk shows first as a failed rotation, which
//     the guard knows of before the next append.);
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
// log, reports the cause with ErrNoSpace, and keeps the member out of
// elections until it is restarted with space freed; the restart opens the
// WAL, which starts the segment then.
//
// storage.DiskGuard, around the raft log store, sees the appends fail and
// succeed and probes the disk; this file is the node's side.
//
// Nothing acknowledged is at risk: an acknowledged write is on a quorum.

// noCampaignTimeout replaces a member's raft heartbeat and election
// timeouts while its disk is full: long enough never to fire (raft draws a
// timeout between once and twice it), short enough not to overflow.
const noCampaignTimeout = 100 * 365 * 24 * time.Hour

// diskProbeInterval is how often a member whose disk was full checks
// whether it takes writes again.
const diskProbeInterval = time.Second

// errNoSpace is the error of a write made through a member whose disk is
// full: refused before anything is sent, so it certainly did not happen.
func (n *Node) errNoSpace() error {
	if err := n.disk.RotationFailure(); err != nil {
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
		case <-n.disk.Changed():
		case <-probe:
			n.disk.Probe() // on success the guard is no longer full
		}
		full := n.disk.Full()
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
