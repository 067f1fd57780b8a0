package watch

import "github.com/kvstore/kvstore/mvcc"

// Batch gathers the changes of consecutive applied log entries, so that
// Hub.NotifyBatch hands each matching watch all of them in one response
// instead of one response per revision. Under many concurrent writers raft
// applies entries in batches, and with many watches the cost of a write's
// delivery is dominated by waking each watch's consumer: one wake-up per
// batch instead of one per revision is the difference between fan-out
// that keeps up and fan-out that falls behind.
//
// The zero value is an empty batch. A Batch is used by one goroutine (the
// state machine's) and reused after Reset.
type Batch struct {
	revs    []int64
	events  [][]mvcc.Event
	compact int64
}

// Add records the write applied at rev with the events the store returned
// for it, as Notify would take them; an empty events list is ignored. The
// revisions added must increase.
func (b *Batch) Add(rev int64, events []mvcc.Event) {
	if len(events) == 0 {
		return
	}
	b.revs = append(b.revs, rev)
	b.events = append(b.events, events)
}

// Compacted records a compaction at rev, as Compacted would take it.
func (b *Batch) Compacted(rev int64) { b.compact = max(b.compact, rev) }

// Empty reports whether the batch holds nothing to report.
func (b *Batch) Empty() bool { return len(b.revs) == 0 && b.compact == 0 }

// Reset empties the batch, keeping its memory for reuse.
func (b *Batch) Reset() {
	clear(b.events)
	b.revs, b.events = b.revs[:0], b.events[:0]
	b.compact = 0
}

// NotifyBatch reports the changes gathered in b, as the Notify and
// Compacted calls b stands for would in the order they were applied, with
// the same guarantees and panics; each synced watch receives the events of
// a run of consecutive revisions in one response whose Revision is the
// run's last. The state machine calls it, like Notify, before it
// acknowledges any of the writes. It never blocks on a consumer. The hub
// keeps b's events (as Notify does): the caller must not modify them, but
// may Reset and reuse b.
//
// It returns the number of responses it put on synced watches' channels
// (one per watch per run of revisions), which a state machine may use to
// let the consumers run before it acknowledges the writes (kvstore's FSM
// yields its processor after a delivery to a few watches).
func (h *Hub) NotifyBatch(b *Batch) (responses int) {
	if b.Empty() {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0
	}
	// A compaction only bounds the start of new watches and the history
	// catching-up watches read; synced watches are unaffected (rule 22),
	// so where it fell among the writes does not matter.
	h.compactRev = max(h.compactRev, b.compact)
	for i := 0; i < len(b.revs); {
		if !h.advance(b.revs[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(b.revs) && b.revs[j] == b.revs[j-1]+1 {
			j++
		}
		// Every revision from i to j is applied now; the run's last is
		// the hub's revision.
		h.rev = b.revs[j-1]
		responses += h.deliver(b.revs[i], b.revs[j-1], b.concat(i, j))
		i = j
	}
	return responses
}

// concat returns the events of changes i..j-1 as one slice: the change's
// own when there is one, else a new slice shared by every watch.
func (b *Batch) concat(i, j int) []mvcc.Event {
	if j == i+1 {
		return b.events[i]
	}
	n := 0
	for _, evs := range b.events[i:j] {
		n += len(evs)
	}
	out := make([]mvcc.Event, 0, n)
	for _, evs := range b.events[i:j] {
		out = append(out, evs...)
	}
	return out
}
