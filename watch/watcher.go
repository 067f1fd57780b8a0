package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/kvstore/kvstore/mvcc"
)

// Request describes a watch.
type Request struct {
	// Key and End select the keys, as in a range read: End nil (or empty)
	// watches Key alone, End "\x00" every key >= Key, otherwise [Key, End).
	// An End that sorts at or before Key is ErrInvalidRange; the empty Key
	// stands for "\x00", the smallest key (SEMANTICS.md rule 20).
	Key []byte
	End []byte
	// StartRevision is the first revision to deliver. 0 means the next
	// revision to be applied (the hub's revision + 1); an older one replays
	// history first; a future one delivers from there on. A revision below
	// the compact revision creates the watch and cancels it at once with
	// the compact revision (rule 19). Negative is ErrNegativeRevision.
	StartRevision int64
	// PrevKV asks for each event's PrevKV: the key just before the event,
	// nil when it did not exist or, for an event at exactly the compact
	// revision replayed from history, when that version is gone (rule 21).
	PrevKV bool
	// FilterPut and FilterDelete drop put and delete events.
	FilterPut    bool
	FilterDelete bool
	// ProgressNotify asks for a progress notification every
	// Config.ProgressInterval in which the watch received nothing.
	ProgressNotify bool
	// CreatedNotify asks for a first response with Created set.
	CreatedNotify bool
}

// Response is one message of a watch. Its fields alias memory shared with
// other watches and the store: do not modify them.
//
// Every response but a Created one is a bookmark: when it is received,
// every event of the watch at or below Revision has been delivered.
type Response struct {
	// Revision is the header revision. For events it is the last revision
	// the response covers (the hub's revision when delivered live); for a
	// progress notification, the revision up to which everything has been
	// delivered; for a Created response, the hub's revision when the watch
	// was created (as etcd); for the last response of a cancelled watch,
	// the last revision delivered.
	Revision int64
	// Events are the changes, ordered by revision and within a revision
	// in the transaction's op order. A revision's events are never split
	// across responses; several revisions may share one.
	Events []mvcc.Event
	// CompactRevision is set on the last response of a watch cancelled
	// because the revisions it still had to deliver were compacted.
	CompactRevision int64
	// Err says why the watch ended, on its last response: mvcc.ErrCompacted
	// (match with errors.Is), ErrClosed, or a store error.
	Err error
	// Created marks the first response of a watch with CreatedNotify.
	Created bool
	// Canceled marks the last response of a watch that the hub ended.
	Canceled bool
}

// IsProgressNotify reports whether r is a progress notification.
func (r *Response) IsProgressNotify() bool {
	return len(r.Events) == 0 && !r.Created && !r.Canceled && r.CompactRevision == 0 && r.Revision != 0
}

// watcherState says who may send on a watcher's channel.
type watcherState uint8

const (
	// stateSynced: the watcher is current; whoever holds Hub.mu sends
	// (Notify, progress, Close) without blocking.
	stateSynced watcherState = iota
	// stateCatchingUp: its catch-up goroutine alone sends (without the
	// lock) until it hands the watcher back as synced, or ends it.
	stateCatchingUp
	// stateDone: the channel is closed or about to be; nobody sends.
	stateDone
)

// watcher is one watch. The fields above the line are set at creation and
// never change; the ones below are guarded by Hub.mu.
type watcher struct {
	id   uint64
	ctx  context.Context
	ch   chan Response
	key  string
	end  string // for kindRange only
	kind rangeKind

	prevKV, filterPut, filterDelete, progressNotify bool

	// ---- guarded by Hub.mu
	state watcherState
	// cancelled: its context ended while a catch-up goroutine owned it.
	cancelled bool
	// progressPending: RequestProgress found it catching up (or full).
	progressPending bool
	// sentSinceTick: it received events since the last progress tick.
	sentSinceTick bool
	// stopped: its context callback was stopped or has run.
	stopped bool
	// next is the first revision not yet delivered. For a synced watcher
	// it may lag (Notify updates only watchers it touches): its true next
	// revision is max(next, Hub.rev+1).
	next                    int64
	stop                    func() bool
	grp                     *group
	slot, allSlot, progSlot int32
	// groupSeq and groupN are Hub.groupByWatcher's per-call count and
	// position.
	groupSeq uint64
	groupN   int32
}

func (w *watcher) drops(t mvcc.EventType) bool {
	return (t == mvcc.EventPut && w.filterPut) || (t == mvcc.EventDelete && w.filterDelete)
}

func (w *watcher) filtersAny(evs []mvcc.Event) bool {
	if !w.filterPut && !w.filterDelete {
		return false
	}
	for i := range evs {
		if w.drops(evs[i].Type) {
			return true
		}
	}
	return false
}

// delivered is the last revision whose events the watcher has been handed:
// everything the hub knows for a synced watcher, less for a catching-up one.
func (w *watcher) delivered(hubRev int64) int64 {
	if w.state == stateSynced {
		return hubRev
	}
	return w.next - 1
}

var fromKeyEnd = []byte{0}

// historyRange returns the key and end of w's range for a History request.
func (w *watcher) historyRange() (key, end []byte) {
	switch w.kind {
	case kindRange:
		return aliasBytes(w.key), aliasBytes(w.end)
	case kindFromKey:
		return aliasBytes(w.key), fromKeyEnd
	}
	return aliasBytes(w.key), nil
}

// parseRange applies etcd's watch range rules (SEMANTICS.md rule 20).
func parseRange(key, end []byte) (string, string, rangeKind, error) {
	if len(key) == 0 {
		key = fromKeyEnd // "\x00", the smallest key
	}
	switch {
	case len(end) == 0:
		return string(key), "", kindKey, nil
	case len(end) == 1 && end[0] == 0:
		return string(key), "", kindFromKey, nil
	case bytes.Compare(end, key) <= 0:
		return "", "", 0, fmt.Errorf("%w: key %q, end %q", ErrInvalidRange, key, end)
	}
	return string(key), string(end), kindRange, nil
}

// Watch starts a watch and returns its channel. The watch ends, and the
// channel is closed, when ctx ends (with no further response), when its
// next revision is compacted before it could be delivered (last response:
// Canceled, CompactRevision, Err mvcc.ErrCompacted), or when the hub is
// closed (last response: Canceled, Err ErrClosed). The consumer should
// read until the channel is closed, or cancel ctx: a watch that is neither
// read nor cancelled holds its buffer until Close.
//
// Errors: ErrInvalidRange, ErrNegativeRevision, ErrClosed, or ctx's error
// if it has already ended.
func (h *Hub) Watch(ctx context.Context, r Request) (<-chan Response, error) {
	// etcd checks the start revision before the range (SEMANTICS.md rule
	// 19; seed 1004 of the conformance records).
	if r.StartRevision < 0 {
		return nil, fmt.Errorf("%w: %d", ErrNegativeRevision, r.StartRevision)
	}
	key, end, kind, err := parseRange(r.Key, r.End)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &watcher{
		ctx: ctx, ch: make(chan Response, h.cfg.BufferSize),
		key: key, end: end, kind: kind,
		prevKV: r.PrevKV, filterPut: r.FilterPut, filterDelete: r.FilterDelete,
		progressNotify: r.ProgressNotify,
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	// The store may be ahead of the hub: a state machine that batches its
	// notifications (NotifyBatch) applies writes before it reports them.
	// "Now" is the store's, so that a watch from now never includes a
	// write that was visible before it started, and a compaction already
	// applied bounds the start even if not yet reported.
	now := max(h.rev, h.store.Revision())
	compactRev := max(h.compactRev, h.store.CompactRevision())
	if r.CreatedNotify {
		w.ch <- Response{Revision: now, Created: true}
	}
	start := r.StartRevision
	if start == 0 {
		start = now + 1
	}
	if start < compactRev {
		// Rule 19: created, then cancelled with the compact revision.
		w.state = stateDone
		finish(w, &Response{Revision: start - 1, Canceled: true, CompactRevision: compactRev, Err: mvcc.ErrCompacted})
		return w.ch, nil
	}
	h.nextID++
	w.id = h.nextID
	w.next = start
	h.register(w)
	h.wg.Add(1) // released by the callback, or by stopping it
	w.stop = context.AfterFunc(ctx, func() { h.cancel(w) })
	if start <= h.rev {
		h.startCatchUp(w)
	}
	return w.ch, nil
}

// register adds w to the index and the hub's lists. Caller holds h.mu.
func (h *Hub) register(w *watcher) {
	h.idx.add(w)
	w.allSlot = int32(len(h.all))
	h.all = append(h.all, w)
	if w.progressNotify {
		w.progSlot = int32(len(h.progress))
		h.progress = append(h.progress, w)
	}
}

// unregister removes w from the index and the hub's lists, and stops its
// context callback. Caller holds h.mu.
func (h *Hub) unregister(w *watcher) {
	h.idx.remove(w)
	removeAt(h.all, w.allSlot, func(m *watcher, i int32) { m.allSlot = i })
	h.all = h.all[:len(h.all)-1]
	if w.progressNotify {
		removeAt(h.progress, w.progSlot, func(m *watcher, i int32) { m.progSlot = i })
		h.progress = h.progress[:len(h.progress)-1]
	}
	w.state = stateDone
	w.stopCallback(h)
}

// removeAt moves the last element of s into slot i (telling it its new
// slot) and clears the last; the caller shortens s.
func removeAt(s []*watcher, i int32, setSlot func(*watcher, int32)) {
	last := len(s) - 1
	s[i] = s[last]
	setSlot(s[i], i)
	s[last] = nil
}

// stopCallback stops w's context callback, releasing its count in h.wg if
// it had not started (a started callback releases it itself). Caller holds
// h.mu.
func (w *watcher) stopCallback(h *Hub) {
	if w.stopped {
		return
	}
	w.stopped = true
	if w.stop() {
		h.wg.Done()
	}
}

// cancel is w's context callback: the watch ends and its channel closes.
func (h *Hub) cancel(w *watcher) {
	defer h.wg.Done()
	h.mu.Lock()
	defer h.mu.Unlock()
	w.stopped = true
	switch w.state {
	case stateSynced:
		if !h.closed { // after Close, Close ends it
			h.unregister(w)
			close(w.ch)
		}
	case stateCatchingUp:
		w.cancelled = true // its goroutine (or Close) ends it
	}
}

// end ends a watcher the caller owns: unregisters it, then sends last (if
// not nil) and closes its channel. Caller holds h.mu.
func (h *Hub) end(w *watcher, last *Response) {
	h.unregister(w)
	finish(w, last)
}

// finish sends last, if not nil, and closes w's channel, without blocking:
// if the channel is full, it takes back what the consumer has not received
// yet and merges the two newest responses to make room (several revisions
// may share a response; none is split). Only the channel's owner calls it,
// so nobody else sends meanwhile.
func finish(w *watcher, last *Response) {
	if last != nil {
		select {
		case w.ch <- *last:
		default:
			pending := make([]Response, 0, cap(w.ch))
		drain:
			for {
				select {
				case r := <-w.ch:
					pending = append(pending, r)
				default:
					break drain
				}
			}
			if n := len(pending); n == cap(w.ch) {
				a, b := pending[n-2], pending[n-1]
				evs := make([]mvcc.Event, 0, len(a.Events)+len(b.Events))
				evs = append(append(evs, a.Events...), b.Events...)
				pending[n-2] = Response{Revision: b.Revision, Events: evs, Created: a.Created}
				pending = pending[:n-1]
			}
			for _, r := range pending {
				w.ch <- r
			}
			w.ch <- *last
		}
	}
	close(w.ch)
}

// startCatchUp hands w to a new catch-up goroutine. Caller holds h.mu and
// has set w.next to the first revision to read from history.
func (h *Hub) startCatchUp(w *watcher) {
	w.state = stateCatchingUp
	h.wg.Add(1)
	go h.catchUp(w)
}

// catchUp feeds w from the store's history in bounded batches until it
// reaches the hub's revision, then hands it back to Notify as synced. The
// handoff is under h.mu, which Notify holds while it delivers: a revision
// at or below h.rev is read here, one above it will be delivered by
// Notify, so each is delivered exactly once. It blocks only in sending to
// w's channel, and returns on w's context, on Close, or when w ends.
func (h *Hub) catchUp(w *watcher) {
	defer h.wg.Done()
	key, end := w.historyRange()
	next := int64(0) // the next revision after a delivered batch
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return // Close ends w
		}
		w.next = max(w.next, next)
		if w.cancelled || w.ctx.Err() != nil {
			h.unregister(w)
			h.mu.Unlock()
			close(w.ch)
			return
		}
		from, to := w.next, min(h.rev, w.next+historyWindow-1)
		// Taken before the read: a Restored after it closes this one.
		restored := h.restored
		if from > h.rev {
			if !w.progressPending {
				w.state = stateSynced // caught up: Notify takes over
				h.mu.Unlock()
				return
			}
			w.progressPending = false
			rev := h.rev
			h.mu.Unlock()
			h.send(w, Response{Revision: rev})
			continue
		}
		h.mu.Unlock()

		res, err := h.store.History(mvcc.HistoryRequest{Key: key, End: end, From: from, To: to, Limit: h.cfg.MaxBatchEvents})
		if err != nil {
			h.failCatchUp(w, err)
			return
		}
		if res.Next <= from {
			// The store is behind the hub: a restore to an older snapshot
			// is being installed. Wait for Restored, which resets h.rev,
			// rather than spin.
			select {
			case <-restored:
			case <-w.ctx.Done():
			case <-h.done:
			}
			continue
		}
		evs := w.filterHistory(res.Events)
		if len(evs) > 0 && !h.send(w, Response{Revision: res.Next - 1, Events: evs}) {
			continue // the top of the loop sees why
		}
		next = res.Next
	}
}

// send delivers r on w's channel, blocking until the consumer has room, w's
// context ends or the hub closes. Only w's catch-up goroutine calls it.
func (h *Hub) send(w *watcher, r Response) bool {
	select {
	case w.ch <- r:
		if len(r.Events) > 0 {
			h.mu.Lock()
			w.sentSinceTick = true
			h.eventsSent += uint64(len(r.Events))
			h.mu.Unlock()
		}
		return true
	case <-w.ctx.Done():
	case <-h.done:
	}
	return false
}

// failCatchUp ends a catching-up watcher whose history read failed: with
// the compact revision when its next revision was compacted (rules 19 and
// 22), else with the store's error.
func (h *Hub) failCatchUp(w *watcher, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return // Close ends w
	}
	if w.cancelled || w.ctx.Err() != nil {
		h.end(w, nil)
		return
	}
	last := &Response{Revision: w.next - 1, Canceled: true, Err: err}
	if errors.Is(err, mvcc.ErrCompacted) {
		last.Err = mvcc.ErrCompacted
		last.CompactRevision = max(h.store.CompactRevision(), h.compactRev)
	}
	h.end(w, last)
}

// filterHistory applies w's filters and prev-kv choice to events read from
// history, in place (the slice is the catch-up goroutine's own).
func (w *watcher) filterHistory(evs []mvcc.Event) []mvcc.Event {
	out := evs[:0]
	for _, ev := range evs {
		if w.drops(ev.Type) {
			continue
		}
		if !w.prevKV {
			ev.PrevKV = nil
		}
		out = append(out, ev)
	}
	return out
}
