package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kvstore/kvstore/internal/wire"
)

// Auto-compaction, etcd's two modes (--auto-compaction-mode), on by
// default. Every member samples its own applied revision on a ticker;
// only the ready leader turns the samples into a compaction, which it
// proposes through raft like Node.Compact, so that every member compacts
// at the same revision. Because followers sample too, a new leader
// already knows the revisions of the past retention: a leader change does
// not restart the periodic clock (DESIGN.md, "Auto-compaction").

// AutoCompactionMode selects how WithAutoCompaction reads its retention.
type AutoCompactionMode int

const (
	// AutoCompactionOff disables auto-compaction: history is kept until
	// the host calls Compact.
	AutoCompactionOff AutoCompactionMode = iota
	// AutoCompactionPeriodic keeps the history of the last retention (a
	// duration), as etcd's periodic mode.
	AutoCompactionPeriodic
	// AutoCompactionRevision keeps the latest retention revisions (a
	// count), as etcd's revision mode.
	AutoCompactionRevision
)

// String returns the mode's name as etcd's --auto-compaction-mode spells
// it ("off" for AutoCompactionOff).
func (m AutoCompactionMode) String() string {
	switch m {
	case AutoCompactionOff:
		return "off"
	case AutoCompactionPeriodic:
		return "periodic"
	case AutoCompactionRevision:
		return "revision"
	}
	return fmt.Sprintf("AutoCompactionMode(%d)", int(m))
}

// Defaults of auto-compaction, and etcd's cadences.
const (
	// DefaultAutoCompactionMode and DefaultAutoCompactionRetention are
	// what a node opened without WithAutoCompaction does: keep 5 minutes
	// of history, compacting every 5 minutes, which is what Kubernetes'
	// apiserver does to its etcd. A watcher or reader may fall up to 5
	// minutes behind and still resume; see DESIGN.md for the choice.
	DefaultAutoCompactionMode      = AutoCompactionPeriodic
	DefaultAutoCompactionRetention = 5 * time.Minute

	// MinAutoCompactionRetention is the shortest periodic retention
	// accepted: below it the leader would propose compactions many times
	// a second.
	MinAutoCompactionRetention = time.Second

	// autoCompactionRevisionInterval is how often revision mode checks
	// (etcd's 5 minutes).
	autoCompactionRevisionInterval = 5 * time.Minute
	// autoCompactionMaxInterval caps periodic mode's compaction interval
	// (etcd compacts hourly when the retention is an hour or longer).
	autoCompactionMaxInterval = time.Hour
	// autoCompactionSamplesPerInterval is how many revision samples
	// periodic mode takes per compaction interval (etcd's 10).
	autoCompactionSamplesPerInterval = 10
)

// WithAutoCompaction sets how the cluster's history is compacted without
// the host calling Compact, as etcd's --auto-compaction-mode and
// --auto-compaction-retention:
//
//   - AutoCompactionPeriodic, retention a duration of at least
//     MinAutoCompactionRetention: the history of the last retention is
//     kept. Revisions are sampled every tenth of the compaction interval,
//     which is the retention itself when under an hour, else an hour; the
//     first compaction comes once retention has passed, then one every
//     interval, each to the revision sampled retention earlier. History
//     is thus kept for between retention and retention plus one interval.
//   - AutoCompactionRevision, retention a count of revisions (pass it as
//     a number: WithAutoCompaction(AutoCompactionRevision, 10000)): every
//     5 minutes the store is compacted to its revision minus retention,
//     keeping the latest retention revisions.
//   - AutoCompactionOff (retention ignored; pass 0): no auto-compaction.
//
// The default is AutoCompactionPeriodic with 5 minutes
// (DefaultAutoCompactionRetention). Only the leader compacts, through
// raft like Compact; give every member the same setting, since whichever
// leads applies its own. A negative retention, a zero one in an active
// mode, a periodic one under MinAutoCompactionRetention or an unknown
// mode fails Open with ErrInvalidOption.
func WithAutoCompaction(mode AutoCompactionMode, retention time.Duration) Option {
	return func(c *config) error {
		switch {
		case mode < AutoCompactionOff || mode > AutoCompactionRevision:
			return invalid("WithAutoCompaction", "unknown mode %v", mode)
		case retention < 0:
			return invalid("WithAutoCompaction", "negative retention %d", int64(retention))
		case mode == AutoCompactionPeriodic && retention < MinAutoCompactionRetention:
			return invalid("WithAutoCompaction", "periodic retention %v is below %v (use AutoCompactionOff to disable)", retention, MinAutoCompactionRetention)
		case mode == AutoCompactionRevision && retention == 0:
			return invalid("WithAutoCompaction", "zero revisions to keep (use AutoCompactionOff to disable)")
		}
		c.autoCompaction = autoCompaction{mode: mode, retention: retention}
		return nil
	}
}

// autoCompaction is a node's auto-compaction setting.
type autoCompaction struct {
	mode AutoCompactionMode
	// retention is a duration in periodic mode, a count of revisions in
	// revision mode.
	retention time.Duration
}

// compactInterval is how often the leader compacts.
func (a autoCompaction) compactInterval() time.Duration {
	if a.mode == AutoCompactionRevision {
		return autoCompactionRevisionInterval
	}
	return min(a.retention, autoCompactionMaxInterval)
}

// tick is how often the loop wakes: to sample, in periodic mode.
func (a autoCompaction) tick() time.Duration {
	if a.mode == AutoCompactionRevision {
		return autoCompactionRevisionInterval
	}
	return a.compactInterval() / autoCompactionSamplesPerInterval
}

// revisionSample is the revision a member had applied at a time of its
// clock.
type revisionSample struct {
	at       time.Time
	revision int64
}

// revisionSamples are a member's samples, oldest first, of the last
// retention and the newest before it: a periodic retention of d holds at
// most d/tick + 2 of them.
type revisionSamples struct {
	samples []revisionSample
}

// add records rev at now and drops the samples no longer needed to answer
// at(now') for now' ≥ now.
func (s *revisionSamples) add(now time.Time, rev int64, retention time.Duration) {
	s.samples = append(s.samples, revisionSample{at: now, revision: rev})
	cutoff := now.Add(-retention)
	keep := 0 // the newest sample at or before cutoff, or the oldest
	for i, smp := range s.samples {
		if smp.at.After(cutoff) {
			break
		}
		keep = i
	}
	if keep > 0 {
		s.samples = append(s.samples[:0], s.samples[keep:]...)
	}
}

// at returns the revision of the newest sample taken at or before t.
func (s *revisionSamples) at(t time.Time) (int64, bool) {
	rev, ok := int64(0), false
	for _, smp := range s.samples {
		if smp.at.After(t) {
			break
		}
		rev, ok = smp.revision, true
	}
	return rev, ok
}

// runAutoCompaction samples revisions on every member and, while this node
// is the ready leader, proposes the compactions its mode calls for, until
// the node closes. A member's samples are of its own applied revision,
// never ahead of the cluster's at that time, so a compaction chosen from
// them never discards history younger than the retention.
func (n *Node) runAutoCompaction() {
	ac := n.cfg.autoCompaction
	ticker := time.NewTicker(ac.tick())
	defer ticker.Stop()
	var samples revisionSamples
	var lastCompaction time.Time // by this node as leader; zero before its first
	if ac.mode == AutoCompactionPeriodic {
		samples.add(time.Now(), n.fsm.revision(), ac.retention)
	}
	for {
		select {
		case <-ticker.C:
		case <-n.closed:
			return
		}
		now := time.Now()
		if ac.mode == AutoCompactionPeriodic {
			// Sample first, as etcd does, so that the sample of exactly
			// a retention ago is there to be found.
			samples.add(now, n.fsm.revision(), ac.retention)
		}
		if info, _ := n.lead.get(); !info.IsLeader || now.Sub(lastCompaction) < ac.compactInterval() {
			continue
		}
		if n.disk.Full() {
			continue // its log cannot grow; tried again at the next tick
		}
		var target int64
		switch ac.mode {
		case AutoCompactionPeriodic:
			rev, ok := samples.at(now.Add(-ac.retention))
			if !ok {
				continue // not sampled for a retention yet
			}
			target = rev
		case AutoCompactionRevision:
			target = n.fsm.revision() - int64(ac.retention)
		}
		// Nothing to discard counts as a compaction done, as etcd counts
		// ErrCompacted: the cadence stays one compaction per interval.
		if target <= n.fsm.compactRevision() || n.autoCompact(target) {
			lastCompaction = now
		}
	}
}

// autoCompact proposes a compaction at rev on this node, which must lead,
// and reports whether it was applied (or a later one was).
func (n *Node) autoCompact(rev int64) bool {
	ctx, cancel := context.WithTimeout(n.closedCtx, n.cfg.autoCompaction.tick())
	defer cancel()
	data, err := wire.EncodeCommand(&wire.Command{Kind: wire.CmdCompact, Revision: rev})
	if err == nil {
		_, _, err = n.proposeLocal(ctx, data)
	}
	ac := n.cfg.autoCompaction
	switch {
	case err == nil:
		n.logger().Info("auto compaction", "member", n.cfg.id, "revision", rev,
			"mode", ac.mode.String(), "retention", ac.retentionString())
		return true
	case errors.Is(err, ErrCompacted):
		return true // compacted at or past rev meanwhile (a host's Compact)
	case n.closedCtx.Err() != nil, errors.Is(err, ErrNotLeader):
		return false // the next leader decides
	}
	n.logger().Warn("auto compaction failed", "member", n.cfg.id, "revision", rev, "error", err)
	return false
}

// retentionString is the retention for logs: a duration or a count.
func (a autoCompaction) retentionString() string {
	if a.mode == AutoCompactionRevision {
		return fmt.Sprint(int64(a.retention))
	}
	return a.retention.String()
}
