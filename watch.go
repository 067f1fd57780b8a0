package kvstore

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// Event is one change a watch delivers: a PUT or DELETE of a key, with the
// key before it (PrevKV) when the watch asked WithPrevKV.
type Event = mvcc.Event

// Event types.
const (
	EventPut    = mvcc.EventPut
	EventDelete = mvcc.EventDelete
)

// WatchResponse is one message of a watch: events of one or more whole
// revisions, a progress notification, a created notification, or the last
// message of a watch that ended (Canceled, with Err and, for compaction,
// CompactRevision). Its Revision is the header revision. Its memory is
// shared: do not modify it.
type WatchResponse = watch.Response

// WatchChan delivers a watch's responses; it is closed when the watch ends.
type WatchChan = <-chan WatchResponse

// Watch watches key (or a range, WithRange, WithPrefix or WithFromKey) on
// this node's applied state, from WithRev's revision (older revisions are
// replayed from history first) or from the next one. It keeps etcd's
// guarantees: events ordered by revision and within one in the txn's op
// order, none twice, none skipped, a revision never split across
// responses; a watch resumed from the last revision received + 1 continues
// exactly; a progress notification at R means every event up to R was
// delivered. It works on every member: a follower's watch sees what the
// follower applied, and a follower that installs a snapshot keeps its
// watches whole (or ends them with the compact revision, never a gap).
//
// The channel is closed when ctx ends, when the revisions the watch still
// had to deliver are compacted (last response: Canceled, CompactRevision,
// Err matching ErrCompacted), or when the node closes (Err ErrWatchClosed). A
// consumer that stops reading never blocks the node: its watch falls
// behind and catches up from history. Invalid options or a negative start
// revision are errors here.
func (n *Node) Watch(ctx context.Context, key []byte, opts ...OpOption) (WatchChan, error) {
	if n.closedCtx.Err() != nil {
		return nil, n.errClosed()
	}
	s := newOpSettings(key, opts)
	if err := s.check(requestWatch); err != nil {
		return nil, err
	}
	if err := n.refuseIfCorrupt(); err != nil {
		return nil, err
	}
	ch, err := n.fsm.watch(ctx, watch.Request{
		Key: s.key, End: s.end, StartRevision: s.rev, PrevKV: s.prevKV,
		FilterPut: s.filterPut, FilterDelete: s.filterDelete,
		ProgressNotify: s.progressNotify, CreatedNotify: s.createdNotify,
	})
	if errors.Is(err, watch.ErrClosed) {
		return nil, n.errClosed()
	}
	return ch, err
}

// RequestProgress sends a progress notification to every watch on this
// node that is up to date: its Revision is a bookmark (every event up to it
// was delivered). A watch still catching up gets none; its next response
// is one.
func (n *Node) RequestProgress(ctx context.Context) error {
	if n.closedCtx.Err() != nil {
		return n.errClosed()
	}
	n.fsm.requestProgress()
	return ctx.Err()
}
