// Package watch is kvstore's watch hub: it serves etcd-style watches over
// one mvcc store, fed by the state machine after each applied write, and
// keeps etcd's guarantees without ever blocking the writer.
//
// # Basics
//
// [NewHub] wraps a [Store] (a *mvcc.Store). [Hub.Watch] starts a watch on a
// key, a range or every key from a key, from a start revision (0: the next
// one; older: history is replayed first), and returns a channel of
// [Response]s. A response carries a header revision, events (with PrevKV
// when asked for), and, on the last response of a watch the hub ended,
// Canceled with Err (and CompactRevision for a compaction). The channel is
// closed when the watch ends: when its context ends (no further response),
// when the revisions it still had to deliver were compacted, or when the
// hub is closed.
//
// # Guarantees
//
// For each watch, etcd's six:
//
//   - Ordered: events arrive by revision, and within a revision in the
//     write transaction's op order.
//   - Unique: an event is delivered at most once.
//   - Reliable: no event in the watched range is skipped while it is in
//     history; a watch that cannot continue (its next revision was
//     compacted before it could be delivered) ends with the compact
//     revision, never with a silent gap.
//   - Atomic: a revision's events are never split across responses.
//   - Resumable: a new watch from the last Revision received + 1
//     continues exactly where the old one stopped.
//   - Bookmarkable: a progress notification (see [Response.IsProgressNotify],
//     [Hub.RequestProgress], [Request.ProgressNotify]) with Revision R means
//     every event at or below R has been delivered. So does any response
//     other than a Created one.
//
// # Mechanism
//
// A watch is synced or catching up. Notify hands a synced watch its events
// with a non-blocking send on its buffered channel. When the channel is
// full, the watch switches to catching up: a goroutine of its own reads the
// store's history in bounded batches (Config.MaxBatchEvents) and sends them,
// blocking only itself, until it reaches the hub's revision and hands the
// watch back to Notify. The handoff is under the hub's lock, which Notify
// holds while delivering, so each revision is delivered exactly once: by
// history if it is at or below the hub's revision at the handoff, by Notify
// otherwise. An idle watch costs no goroutine; a lagging one costs one
// goroutine and at most one batch besides its channel, and that goroutine
// ends when the watch is current again. The goroutine parks in the channel
// send itself, so it resumes as soon as the consumer reads: no polling, and
// one stalled consumer delays nobody else.
//
// Notify finds the watches of a key through an index (a map of single keys,
// an interval treap of ranges), so its cost follows the matching watches,
// not all of them.
//
// # Threading contract
//
//   - Notify, NotifyBatch, Compacted and Restored are called by the state
//     machine, from one goroutine at a time, in apply order: Notify after
//     each write that changed something (with the revision and events the
//     store returned), Compacted after each compaction that succeeded, or
//     both gathered in a [Batch] over several applied entries and reported
//     with NotifyBatch, which delivers a run of revisions to each watch in
//     one response; Restored after each Restore of the store, with any
//     batch reported first. The state machine must report a write before it
//     acknowledges it. A watch with start revision 0 starts after the
//     store's revision when it is created, even while a batch is applied
//     but not yet reported, so it never includes a write that was visible
//     before it.
//     None of them ever waits for a consumer. Each takes the hub's lock,
//     which other holders keep only for bounded bookkeeping (registering or
//     ending a watch, a catch-up handoff, a chunk of at most 256 progress
//     notifications, Close), and holds it for work proportional to the
//     matching watches (Restored: all watches).
//   - The store passed to NewHub is the one the state machine writes for
//     the hub's whole life: a snapshot is installed with the store's own
//     Restore, in place, never by swapping in another *mvcc.Store.
//   - Watch, RequestProgress and Close may be called from any goroutine, at
//     any time, concurrently with the above and with each other.
//   - Lock order: Hub.mu is the hub's only lock. The hub takes the store's
//     lock under it (Revision, CompactRevision) but never the other way,
//     and reads History without it. The hub never calls the state machine.
//   - Goroutines: one per catching-up watch, the progress loop when
//     Config.ProgressInterval is set, and the context package's callback
//     when a watch's context ends. Close returns after all of them have.
//
// # Caveats
//
//   - Responses share memory with the store and with other watches: never
//     modify a response's events or their key-values.
//   - A watch whose consumer neither reads nor cancels its context keeps
//     its buffer (and, if it was catching up, a goroutine and one batch)
//     until Close.
//   - Created responses carry the hub's revision at creation, as etcd's do;
//     when history is replayed that is not a bookmark.
package watch
