package watch

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/kvstore/kvstore/mvcc"
)

// Store is what a Hub reads from the key-value store; *mvcc.Store
// implements it. History is read by catch-up goroutines concurrently with
// the writer; Revision and CompactRevision by NewHub, Restored and Watch,
// under the hub's lock, concurrently with the writer too.
type Store interface {
	History(mvcc.HistoryRequest) (mvcc.HistoryResult, error)
	Revision() int64
	CompactRevision() int64
}

// Defaults for a zero Config.
const (
	DefaultBufferSize     = 16
	DefaultMaxBatchEvents = 256
)

// historyWindow caps the revisions one catch-up History read scans, so a
// watcher on a rarely written key that is far behind never holds the
// store's read lock (and so the next write) for long.
const historyWindow = 4096

// maxKeptMatches caps the Notify scratch space kept between calls.
const maxKeptMatches = 4096

// progressChunk is the number of watchers handed a progress notification
// per hold of the hub's lock, so that Notify never waits long behind a
// RequestProgress over many watchers.
const progressChunk = 256

// Config configures a Hub. The zero value is usable.
type Config struct {
	// BufferSize is the capacity, in responses, of each watch's channel: the
	// most a watch holds for a consumer that is not reading before it
	// falls back to catching up from history. One response holds one or
	// more whole revisions. 0 means DefaultBufferSize; the minimum is 2.
	BufferSize int
	// ProgressInterval is the period of progress notifications for watches
	// that ask for them (Request.ProgressNotify); 0 turns them off.
	ProgressInterval time.Duration
	// MaxBatchEvents bounds the events of one catch-up response: a batch
	// stops after the revision at which it holds at least that many (a
	// revision is never split, so one large transaction can exceed it).
	// 0 means DefaultMaxBatchEvents.
	MaxBatchEvents int
}

// Hub serves watches over one store. See the package documentation for the
// threading contract; every method is safe for concurrent use.
type Hub struct {
	store Store
	cfg   Config
	// done is closed when Close starts; catch-up goroutines and the
	// progress loop watch it. closeDone is closed when Close has finished.
	done      chan struct{}
	closeDone chan struct{}
	// wg counts the catch-up goroutines, the progress loop, and one entry
	// per registered watch for its context callback (released when the
	// callback has run or has been stopped).
	wg sync.WaitGroup

	// mu guards every field below and every watcher's mutable fields. It
	// is the hub's only lock. Hub code calls the store's Revision and
	// CompactRevision while holding it (lock order: Hub.mu, then the
	// store's lock), but never History.
	mu sync.Mutex
	// rev is the last revision the hub knows applied: the last Notify, or
	// the store's revision at NewHub or Restored.
	rev int64
	// compactRev is the last compaction the hub was told about.
	compactRev int64
	// restored is closed and replaced by each Restored call.
	restored chan struct{}
	closed   bool
	nextID   uint64
	idx      index
	// all holds every registered watcher (w.allSlot is its position);
	// progress those with ProgressNotify (w.progSlot).
	all      []*watcher
	progress []*watcher
	// matches and grouped are Notify's scratch space, reused across
	// calls; groupSeq numbers groupByWatcher's passes.
	matches, grouped []match
	groupSeq         uint64
	// eventsSent counts the events put on watches' channels (Stats).
	eventsSent uint64
}

// NewHub returns a hub serving watches over store, starting at the store's
// current revision. Every later change to the store must be reported with
// Notify, Compacted or Restored.
func NewHub(store Store, cfg Config) *Hub {
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	cfg.BufferSize = max(cfg.BufferSize, 2)
	if cfg.MaxBatchEvents <= 0 {
		cfg.MaxBatchEvents = DefaultMaxBatchEvents
	}
	h := &Hub{
		store:      store,
		cfg:        cfg,
		done:       make(chan struct{}),
		closeDone:  make(chan struct{}),
		restored:   make(chan struct{}),
		rev:        store.Revision(),
		compactRev: store.CompactRevision(),
	}
	if cfg.ProgressInterval > 0 {
		h.wg.Add(1)
		go h.progressLoop()
	}
	return h
}

// Notify reports the write transaction applied at revision rev, with the
// events the store returned for it, in order. It is called by the state
// machine after each write that changed something, in revision order, from
// one goroutine; an empty events list is ignored. It never blocks on a
// consumer: a watch whose channel is full switches to catching up from
// history.
//
// The hub keeps events and hands them (or sub-slices of them) to watches:
// the caller must not modify them afterwards. Their PrevKV, as the store
// sets it on every write, is passed to watches that asked for it and
// stripped for the others.
//
// Notify panics if rev does not advance past the last notified (or
// restored) revision: replicas would diverge. A revision that skips ahead
// is recovered like a restore: every watch behind it catches up from
// history.
func (h *Hub) Notify(rev int64, events []mvcc.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.advance(rev) {
		h.deliver(rev, rev, events)
	}
}

// advance checks that rev follows the last notified revision and makes it
// the hub's revision. It reports whether rev is the next revision, whose
// events the caller delivers; a revision that skips ahead is recovered
// here, like a restore: every synced watch catches up from history. Caller
// holds h.mu.
func (h *Hub) advance(rev int64) bool {
	switch {
	case rev <= h.rev:
		panic(fmt.Sprintf("watch: Notify at revision %d after revision %d", rev, h.rev))
	case rev > h.rev+1:
		old := h.rev
		h.rev = rev
		h.recheck(old)
		return false
	}
	h.rev = rev
	return true
}

// deliver hands the events of the consecutive revisions first..last, in
// revision order, to the synced watches they match: one response per
// watch, however many revisions it covers. It returns the number of watches
// handed a response. h.rev is already last. Caller holds h.mu.
func (h *Hub) deliver(first, last int64, events []mvcc.Event) (watches int) {
	if len(h.all) == 0 {
		return 0
	}
	m := h.matches[:0]
	for i := range events {
		m = h.idx.collect(aliasString(events[i].KV.Key), int32(i), m)
	}
	if len(m) == 0 {
		return 0
	}
	if len(events) > 1 {
		m = h.groupByWatcher(m)
	}
	n := notification{first: first, rev: last, events: events}
	sent := h.notifyAll(m, &n)
	h.eventsSent += sent.events
	clear(m) // drop the watcher pointers
	if cap(m) > maxKeptMatches {
		m = nil // a huge txn on many watchers: do not keep its scratch
	}
	h.matches = m[:0]
	return sent.watches
}

// sentCount is what a delivery handed out: events, and the watches that
// received them.
type sentCount struct {
	events  uint64
	watches int
}

func (c *sentCount) add(o sentCount) {
	c.events += o.events
	c.watches += o.watches
}

// deliverPartMin is the fewest matches one goroutine delivers when a
// delivery is shared between processors (notifyAll).
const deliverPartMin = 256

// notifyAll delivers n to the watchers of m, whose matches are adjacent,
// and returns what it sent. A large delivery is cut into parts of at
// least deliverPartMin matches, at most one per Go processor, each
// delivered by its own goroutine: a watcher's consumer runs on the
// processor that woke it, so 1,000 watchers woken from one goroutine queue
// on one processor while the others idle (1,000 watchers, one writer:
// p50 270 -> 150 µs on 2 cores; BENCHMARKS.md). It returns once every
// part is delivered, so the caller's h.mu covers them all, and the next
// delivery cannot overtake this one for any watcher. The parts share
// nothing but n's PrevKV-less copy, made before they start; each
// watcher's matches are in one part. Caller holds h.mu.
func (h *Hub) notifyAll(m []match, n *notification) sentCount {
	parts := min(runtime.GOMAXPROCS(0), len(m)/deliverPartMin)
	if parts < 2 {
		return h.notifyRange(m, n)
	}
	n.withoutPrev()
	sent := make([]sentCount, parts)
	var wg sync.WaitGroup
	lo := 0
	for p := range parts {
		hi := len(m) * (p + 1) / parts
		for hi < len(m) && hi > lo && m[hi].w == m[hi-1].w {
			hi++ // a watcher's matches stay in one part
		}
		part := m[lo:hi]
		if p == parts-1 {
			sent[p] = h.notifyRange(part, n)
		} else {
			wg.Go(func() { sent[p] = h.notifyRange(part, n) })
		}
		lo = hi
	}
	wg.Wait()
	var total sentCount
	for _, x := range sent {
		total.add(x)
	}
	return total
}

// notifyRange delivers n to the watchers of m in order and returns what it
// sent.
func (h *Hub) notifyRange(m []match, n *notification) (sent sentCount) {
	for i := 0; i < len(m); {
		j := i + 1
		for j < len(m) && m[j].w == m[i].w {
			j++
		}
		if evs := h.notifyOne(m[i].w, m[i:j], n); evs > 0 {
			sent.add(sentCount{events: evs, watches: 1})
		}
		i = j
	}
	return sent
}

// groupByWatcher returns the matches reordered so that each watcher's are
// adjacent, watchers in the order of their first match and each watcher's
// matches in their order in m (so in revision and op order): a counting
// sort in two passes over m, O(len(m)) however many watchers there are.
// The result is m itself when no watcher has two matches, else the hub's
// second scratch slice, which then swaps roles with m. Caller holds h.mu.
func (h *Hub) groupByWatcher(m []match) []match {
	// Pass one counts each watcher's matches; a watcher's groupSeq marks
	// which pass of which call last touched it, so no reset is needed.
	h.groupSeq += 2
	counted, placed := h.groupSeq, h.groupSeq+1
	distinct := 0
	for _, x := range m {
		w := x.w
		if w.groupSeq != counted {
			w.groupSeq, w.groupN = counted, 0
			distinct++
		}
		w.groupN++
	}
	if distinct == len(m) {
		return m
	}
	// Pass two gives each watcher, at its first match, the span after the
	// previous watcher's; groupN becomes its next free position.
	out := slices.Grow(h.grouped[:0], len(m))[:len(m)]
	next := int32(0)
	for _, x := range m {
		w := x.w
		if w.groupSeq == counted {
			w.groupSeq = placed
			w.groupN, next = next, next+w.groupN
		}
		out[w.groupN] = x
		w.groupN++
	}
	clear(m)
	if cap(m) > maxKeptMatches {
		m = nil
	}
	h.grouped = m[:0]
	return out
}

// notification is the events of the revisions first..rev being delivered,
// with a PrevKV-less copy made on first need and shared by every watcher
// that did not ask for prev kvs.
type notification struct {
	first, rev int64
	events     []mvcc.Event
	noPrev     []mvcc.Event
}

func (n *notification) withoutPrev() []mvcc.Event {
	if n.noPrev == nil {
		n.noPrev = slices.Clone(n.events)
		for i := range n.noPrev {
			n.noPrev[i].PrevKV = nil
		}
	}
	return n.noPrev
}

// eventsFor returns w's events of the notification: a shared sub-slice
// when they are contiguous and none is filtered out, else a new slice.
func (n *notification) eventsFor(w *watcher, ms []match) []mvcc.Event {
	lo, hi := int(ms[0].ev), int(ms[len(ms)-1].ev)+1
	if hi-lo == len(ms) && !w.filtersAny(n.events[lo:hi]) {
		src := n.events
		if !w.prevKV {
			src = n.withoutPrev()
		}
		return src[lo:hi:hi]
	}
	var out []mvcc.Event
	for _, m := range ms {
		ev := n.events[m.ev]
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

// notifyOne delivers a notification to one matching watcher, or switches it
// to catching up if its channel is full, and returns the events sent. It
// touches only w's state: parts of a delivery run it concurrently for
// different watchers (notifyAll). Caller holds h.mu.
func (h *Hub) notifyOne(w *watcher, ms []match, n *notification) uint64 {
	if w.state != stateSynced || w.next > n.rev {
		return 0 // catching up (its goroutine reads these revisions), or starts later
	}
	if w.next > n.first {
		// It was created within the notification's revisions: skip the
		// ones before its start.
		k := 0
		for k < len(ms) && n.events[ms[k].ev].KV.ModRevision < w.next {
			k++
		}
		ms = ms[k:]
	}
	if len(ms) == 0 {
		w.next = n.rev + 1
		return 0
	}
	evs := n.eventsFor(w, ms)
	if len(evs) == 0 {
		w.next = n.rev + 1
		return 0
	}
	select {
	case w.ch <- Response{Revision: n.rev, Events: evs}:
		w.next = n.rev + 1
		w.sentSinceTick = true
		return uint64(len(evs))
	default:
		w.next = max(w.next, n.first)
		h.startCatchUp(w)
	}
	return 0
}

// Compacted reports that the store was compacted at rev. Watches already
// synced are unaffected (SEMANTICS.md rule 22); a catching-up watch learns
// of the compaction from its next history read and is cancelled with the
// compact revision; a new watch from below rev is created and cancelled at
// once (rule 19). Called by the state machine's goroutine, like Notify.
func (h *Hub) Compacted(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.compactRev = max(h.compactRev, rev)
}

// Restored reports that the store's contents were replaced (a snapshot was
// installed): its revision and compact revision are read again, and every
// watch is re-checked against the new store. A watch whose next revision
// the store now holds in history catches up from it; one whose next
// revision is compacted is cancelled with the compact revision; one ahead
// of the restored revision (a store moved back) waits, and skips the
// revisions it has already delivered when they are applied again. Never a
// gap, never a duplicate. Called by the state machine's goroutine after
// the store's Restore returned and before the next Notify.
func (h *Hub) Restored() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	old := h.rev
	h.rev = h.store.Revision()
	h.compactRev = h.store.CompactRevision()
	close(h.restored)
	h.restored = make(chan struct{})
	h.recheck(old)
}

// recheck sends every synced watcher whose next revision is at or below
// h.rev to catch up from history. old is the revision synced watchers had
// reached. Caller holds h.mu.
func (h *Hub) recheck(old int64) {
	for _, w := range h.all {
		if w.state != stateSynced {
			continue
		}
		w.next = max(w.next, old+1)
		if w.next <= h.rev {
			h.startCatchUp(w)
		}
	}
}

// RequestProgress asks for a progress notification on every watch that
// exists when it is called: an empty response whose Revision R guarantees
// that every event at or below R has been delivered. A synced watch
// receives it at once at the hub's revision; a watch that is catching up,
// or whose channel is full, receives it when it has caught up, at the
// revision it caught up to (etcd sends nothing to unsynced watchers; here
// the request is remembered instead). It never blocks on a consumer.
func (h *Hub) RequestProgress() {
	h.inChunks(func(h *Hub) []*watcher { return h.all }, func(w *watcher) {
		switch w.state {
		case stateSynced:
			select {
			case w.ch <- Response{Revision: h.rev}:
			default:
				w.next = max(w.next, h.rev+1)
				w.progressPending = true
				h.startCatchUp(w)
			}
		case stateCatchingUp:
			w.progressPending = true
		}
	})
}

// inChunks calls visit, under the hub's lock, for each watch of the list
// that list returns when inChunks is called, holding the lock for
// progressChunk watches at a time so that Notify never waits long. It
// stops if the hub closes meanwhile.
func (h *Hub) inChunks(list func(*Hub) []*watcher, visit func(*watcher)) {
	h.mu.Lock()
	targets := slices.Clone(list(h))
	h.mu.Unlock()
	for i := 0; i < len(targets); i += progressChunk {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		for _, w := range targets[i:min(i+progressChunk, len(targets))] {
			visit(w)
		}
		h.mu.Unlock()
	}
}

// progressLoop sends periodic progress notifications until Close.
func (h *Hub) progressLoop() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
			h.progressTick()
		}
	}
}

// progressTick sends a progress notification to each synced watch with
// ProgressNotify that received nothing since the previous tick and has room
// for it (as etcd: only idle watches, and a busy one is not waited for).
func (h *Hub) progressTick() {
	h.inChunks(func(h *Hub) []*watcher { return h.progress }, func(w *watcher) {
		if w.state == stateSynced && !w.sentSinceTick {
			select {
			case w.ch <- Response{Revision: h.rev}:
			default:
			}
		}
		w.sentSinceTick = false
	})
}

// Close ends every watch: each receives a last response with Canceled and
// ErrClosed (after the responses already in its channel), then its channel
// is closed; a watch whose context had already ended is just closed. Close
// returns once every goroutine of the hub has ended (catch-up goroutines,
// the progress loop, context callbacks already running). Later Watch calls
// fail with ErrClosed and later Notify, Compacted and Restored calls do
// nothing. It is safe to call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		<-h.closeDone
		return
	}
	defer close(h.closeDone)
	h.closed = true
	close(h.done)
	for _, w := range h.all {
		w.stopCallback(h)
	}
	// Synced watchers are owned by the lock holder: end them now. The
	// catch-up goroutines return on done without touching their channels.
	for _, w := range slices.Clone(h.all) {
		if w.state == stateSynced {
			h.end(w, h.closedResponse(w))
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range slices.Clone(h.all) {
		h.end(w, h.closedResponse(w))
	}
}

func (h *Hub) closedResponse(w *watcher) *Response {
	if w.cancelled || w.ctx.Err() != nil {
		return nil // its context ended first: the channel just closes
	}
	return &Response{Revision: w.delivered(h.rev), Canceled: true, Err: ErrClosed}
}
