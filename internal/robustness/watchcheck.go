package robustness

import (
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
)

// WatchEvent is one event a watch delivered, in the model's terms.
type WatchEvent struct {
	Revision int64
	Delete   bool
	Key      int
	// KV is the key after the event (for a delete only Mod, the delete's
	// revision, is set); PrevKV the key before it, nil for none.
	KV     KV
	PrevKV *KV
}

func (e WatchEvent) equal(o WatchEvent) bool {
	if e.Revision != o.Revision || e.Delete != o.Delete || e.Key != o.Key || e.KV != o.KV {
		return false
	}
	if (e.PrevKV == nil) != (o.PrevKV == nil) {
		return false
	}
	return e.PrevKV == nil || *e.PrevKV == *o.PrevKV
}

func (e WatchEvent) String() string {
	kind := "put"
	if e.Delete {
		kind = "delete"
	}
	prev := "nil"
	if e.PrevKV != nil {
		prev = fmt.Sprintf("%+v", *e.PrevKV)
	}
	return fmt.Sprintf("%s %s@%d %+v prev %s", kind, KeyName(e.Key), e.Revision, e.KV, prev)
}

// WatchResponse is one response a watch delivered.
type WatchResponse struct {
	Revision        int64
	Events          []WatchEvent
	Progress        bool
	Canceled        bool
	CompactRevision int64
}

// WatchSegment is the life of one watch: opened on a node from Start
// (WithRev), it ends when the node closes, the watch is cancelled for
// compaction, or the run ends; the watcher then resumes with a new
// segment from the last revision it received + 1 (or the compact
// revision).
type WatchSegment struct {
	Node, Incarnation int
	Start             int64
	Responses         []WatchResponse
}

// Reference is the sequence of committed revisions as the watches
// delivered them: Events[r] are revision r's events, in order.
type Reference struct {
	Events map[int64][]WatchEvent
	// Final is the last committed revision.
	Final int64
	// CompactRevs are the revisions compactions were asked at: an event
	// at one of them replayed from history may lack its PrevKV.
	CompactRevs map[int64]bool
	// States[r] is the state at revision r, for every r up to the first
	// revision no watch delivered (Leases are not tracked: events do not
	// show them).
	States []State
}

// BuildReference merges the watches' revisions into one sequence. Every
// watch that delivered a revision must have delivered the same events
// (with one allowance: an event at exactly a compact revision replayed
// from history may lack its PrevKV, whose version compaction dropped; see
// watch.Request.PrevKV), and each revision's events must follow from the
// state before it. compactRevs are the revisions compactions were asked
// at.
func BuildReference(segs []WatchSegment, final int64, compactRevs map[int64]bool) (*Reference, []error) {
	var errs []error
	ref := &Reference{Events: map[int64][]WatchEvent{}, Final: final, CompactRevs: compactRevs}
	for _, seg := range segs {
		for _, resp := range seg.Responses {
			for _, group := range byRevision(resp.Events) {
				rev := group[0].Revision
				have, ok := ref.Events[rev]
				if !ok {
					ref.Events[rev] = group
					continue
				}
				if len(have) != len(group) {
					errs = append(errs, fmt.Errorf("watches disagree on revision %d: %v / %v (node %d)", rev, have, group, seg.Node))
					continue
				}
				for i := range group {
					a, b := have[i], group[i]
					if a.equal(b) {
						continue
					}
					if compactRevs[rev] && (a.PrevKV == nil) != (b.PrevKV == nil) {
						a.PrevKV, b.PrevKV = nil, nil
						if a.equal(b) {
							if have[i].PrevKV == nil {
								have[i] = group[i] // keep the complete one
							}
							continue
						}
					}
					errs = append(errs, fmt.Errorf("watches disagree on revision %d: %v / %v (node %d)", rev, have[i], group[i], seg.Node))
				}
			}
		}
	}
	// Replay.
	s := State{Revision: 1}
	ref.States = []State{{}, s}
	for rev := int64(2); rev <= final; rev++ {
		events, ok := ref.Events[rev]
		if !ok {
			break
		}
		for _, e := range events {
			before := s.Keys[e.Key]
			var prev *KV
			if before.Version != 0 {
				prev = &before
			}
			switch {
			case e.PrevKV == nil && prev != nil && !compactRevs[rev]:
				errs = append(errs, fmt.Errorf("revision %d: %v has no PrevKV, the key was %+v", rev, e, before))
			case e.PrevKV != nil && (prev == nil || *e.PrevKV != *prev):
				errs = append(errs, fmt.Errorf("revision %d: %v has a wrong PrevKV, the key was %+v", rev, e, before))
			}
			if e.Delete {
				if prev == nil || e.KV.Mod != rev {
					errs = append(errs, fmt.Errorf("revision %d: %v deletes a key that does not exist or at another revision", rev, e))
				}
				s.Keys[e.Key] = KV{}
				continue
			}
			want := KV{Value: e.KV.Value, Mod: rev, Create: rev, Version: 1, Lease: e.KV.Lease}
			if prev != nil {
				want.Create, want.Version = before.Create, before.Version+1
			}
			if e.KV != want {
				errs = append(errs, fmt.Errorf("revision %d: %v, want the key to become %+v", rev, e, want))
			}
			s.Keys[e.Key] = e.KV
		}
		s.Revision = rev
		ref.States = append(ref.States, s)
	}
	return ref, errs
}

// byRevision splits events into runs of one revision.
func byRevision(events []WatchEvent) [][]WatchEvent {
	var out [][]WatchEvent
	for i := 0; i < len(events); {
		j := i + 1
		for j < len(events) && events[j].Revision == events[i].Revision {
			j++
		}
		out = append(out, events[i:j])
		i = j
	}
	return out
}

// CheckWatches checks each watch segment against the reference:
//   - ordered and unique: revisions strictly increase across responses,
//     and never at or below a bookmark already delivered;
//   - atomic: a revision's events come whole in one response (equal to
//     the reference's);
//   - reliable and resumable: every committed revision from the segment's
//     start up to the last revision it covered was delivered — a resumed
//     watch is a segment starting at the revision it resumed from;
//   - bookmarkable: a progress notification at R comes after every
//     revision up to R;
//   - prev-kv correct: the events equal the reference's, whose PrevKVs
//     BuildReference checked against the replay.
//
// lastSegs are the segments open when the run ended; each must have
// covered the final revision. A committed revision no watch delivered is
// an error unless a watch was cancelled by a compaction above it.
func CheckWatches(segs []WatchSegment, lastSegs []WatchSegment, ref *Reference) (stats WatchStats, errs []error) {
	fail := func(seg WatchSegment, format string, args ...any) {
		errs = append(errs, fmt.Errorf("watch on node %d (incarnation %d) from %d: %s", seg.Node, seg.Incarnation, seg.Start, fmt.Sprintf(format, args...)))
	}
	var maxCancel int64
	// committedIn lists the reference revisions in [from, to].
	committedIn := func(from, to int64) []int64 {
		var out []int64
		for r := max(from, 2); r <= min(to, ref.Final); r++ {
			if _, ok := ref.Events[r]; ok {
				out = append(out, r)
			}
		}
		return out
	}
	for si := range segs {
		seg := segs[si]
		last := seg.Start - 1
		var delivered []int64
		checkReliable := func(upTo int64, what string) {
			if want := committedIn(seg.Start, upTo); !slices.Equal(delivered, want) {
				fail(seg, "%s %d: delivered revisions %v, committed %v", what, upTo, delivered, want)
			}
		}
		for ri, resp := range seg.Responses {
			prevDesc := "none"
			if ri > 0 {
				p := seg.Responses[ri-1]
				prevDesc = fmt.Sprintf("#%d rev %d progress=%v events=%d", ri-1, p.Revision, p.Progress, len(p.Events))
			}
			if resp.Canceled {
				if resp.CompactRevision > 0 {
					maxCancel = max(maxCancel, resp.CompactRevision)
					if resp.CompactRevision <= seg.Start {
						fail(seg, "cancelled for compaction at %d, which does not cover its start", resp.CompactRevision)
					}
				}
				break
			}
			if resp.Progress {
				if resp.Revision < seg.Start-1 {
					// Vacuous (nothing below the start is owed) but
					// confusing: see Stats.LowBookmarks.
					stats.LowBookmarks++
					continue
				}
				if resp.Revision < last {
					fail(seg, "bookmark %d after revision %d", resp.Revision, last)
				}
				last = max(last, resp.Revision)
				checkReliable(resp.Revision, "bookmark")
				continue
			}
			for _, group := range byRevision(resp.Events) {
				rev := group[0].Revision
				if rev <= last {
					fail(seg, "revision %d delivered after revision or bookmark %d (response #%d rev %d; previous response %s)", rev, last, ri, resp.Revision, prevDesc)
					continue
				}
				last = rev
				delivered = append(delivered, rev)
				want := ref.Events[rev]
				same := len(want) == len(group)
				for i := 0; same && i < len(group); i++ {
					same = group[i].equal(want[i]) || (group[i].PrevKV == nil && ref.CompactRevs[rev] && sameButPrev(group[i], want[i]))
				}
				if !same {
					fail(seg, "revision %d delivered as %v, committed as %v", rev, group, want)
				}
			}
			if n := len(resp.Events); n > 0 && resp.Revision < resp.Events[n-1].Revision {
				fail(seg, "response revision %d below its last event's %d", resp.Revision, resp.Events[n-1].Revision)
			}
		}
		checkReliable(last, "covered up to")
	}
	for _, seg := range lastSegs {
		var last int64 = seg.Start - 1
		for _, resp := range seg.Responses {
			if resp.Progress || len(resp.Events) > 0 {
				last = max(last, resp.Revision)
			}
		}
		if last < ref.Final {
			fail(seg, "ended the run at revision %d, the final revision is %d", last, ref.Final)
		}
	}
	for r := int64(2); r <= ref.Final; r++ {
		if _, ok := ref.Events[r]; !ok && r >= maxCancel {
			errs = append(errs, fmt.Errorf("revision %d was committed but no watch delivered it", r))
		}
	}
	return stats, errs
}

// WatchStats counts what the watch check noticed without failing.
type WatchStats struct {
	// LowBookmarks counts progress notifications whose revision is below
	// the watch's start revision - 1: a watch resumed on a node that
	// restarted behind the revision it resumes from gets bookmarks at the
	// node's (older) revision. They are vacuously true (no event below the
	// start is owed) but a client that resumes from its last bookmark
	// would go back and receive events twice; etcd, whose store never
	// goes back on restart, does not send them.
	LowBookmarks int
}

func sameButPrev(a, b WatchEvent) bool {
	a.PrevKV, b.PrevKV = nil, nil
	return a.equal(b)
}

// CheckWrites ties the reference to the clients' operations: every
// acknowledged write that changed something appears at the revision it
// reported, with its value; and every value the reference holds was
// written by exactly one client operation (no value that was never
// written, none applied twice).
func CheckWrites(ops []porcupine.Operation, ref *Reference) []error {
	var errs []error
	written := map[string]bool{}
	for _, op := range ops {
		req, resp := op.Input.(Request), op.Output.(Response)
		if req.Value != "" {
			written[req.Value] = true
		}
		if resp.Unknown || resp.Err != "" {
			continue
		}
		want := WatchEvent{Revision: resp.Revision, Key: -1}
		switch {
		case req.Kind == OpPut, req.Kind == OpCAS && resp.Succeeded:
			want.Key, want.KV.Value = req.Key, req.Value
		case req.Kind == OpMulti && resp.Succeeded:
			want.Key, want.KV.Value = req.Key2, req.Value
		case req.Kind == OpMulti:
			want.Key, want.KV.Value = req.Key3, req.Value
		case req.Kind == OpDelete && resp.Deleted > 0:
			want.Key, want.Delete = req.Key, true
		}
		events, ok := ref.Events[resp.Revision]
		if want.Key < 0 || !ok {
			continue // nothing to find, or a revision no watch delivered (reported by CheckWatches)
		}
		found := false
		for _, e := range events {
			found = found || (e.Key == want.Key && e.Delete == want.Delete && e.KV.Value == want.KV.Value)
		}
		if !found {
			errs = append(errs, fmt.Errorf("%s acknowledged at revision %d, which committed %v", describe(req, resp), resp.Revision, events))
		}
	}
	seen := map[string]int64{}
	for rev, events := range ref.Events {
		for _, e := range events {
			if e.Delete {
				continue
			}
			if !written[e.KV.Value] {
				errs = append(errs, fmt.Errorf("revision %d: %v holds a value no client wrote", rev, e))
			}
			if other, dup := seen[e.KV.Value]; dup {
				errs = append(errs, fmt.Errorf("value %q committed twice, at revisions %d and %d", e.KV.Value, other, rev))
			}
			seen[e.KV.Value] = rev
		}
	}
	return errs
}
