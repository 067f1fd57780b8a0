package config

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kvstore/kvstore"
)

// EventType says what an Event reports.
type EventType int

const (
	// EventPut is a value written (created or changed); from Watch's
	// snapshot, a value that existed at its revision.
	EventPut EventType = iota + 1
	// EventDelete is a value deleted.
	EventDelete
	// EventSynced follows the snapshot Watch starts with: every value that
	// existed at Revision has been delivered; later events are changes.
	EventSynced
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventSynced:
		return "synced"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change of a Config's values.
type Event[T any] struct {
	Type EventType
	Name string
	// Old is the value before the change: the zero T for a value created,
	// for the snapshot's events, and when the old value did not decode or
	// is no longer in the store's history.
	Old T
	// New is the value written by an EventPut; the zero T otherwise, and
	// when it did not decode (then Err is set).
	New T
	// Revision is the store revision of the change (for the snapshot's
	// puts, the value's mod revision; for EventSynced, the snapshot's).
	Revision int64
	// Err is a *DecodeError for an EventPut whose value does not decode.
	// Such a value stays in the store; the watch goes on.
	Err error
}

// Watcher delivers a Config's events until its context ends, its node
// closes, or the history it needs was compacted. A Watcher runs one
// goroutine, which ends then; cancel the context to stop it.
type Watcher[T any] struct {
	events chan Event[T]
	rev    atomic.Int64
	mu     sync.Mutex // guards err
	err    error
}

// Events returns the channel of events, in revision order, each change
// once. It is closed when the watch ends; Err then says why.
func (w *Watcher[T]) Events() <-chan Event[T] { return w.events }

// Err returns why the watch ended, once Events is closed: the context's
// error, or an error matching kvstore.ErrWatchClosed (its node closed:
// resume on another member, or on the restarted one, with WatchAfter
// and Revision) or kvstore.ErrCompacted (the changes it still had to
// deliver are gone: start again with Watch).
func (w *Watcher[T]) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Revision returns the revision up to which every change has been sent
// on Events, read once Events is closed: WatchAfter(ctx, Revision())
// continues exactly where this watcher stopped, with no change missed or
// repeated. It counts whole revisions: a watch whose context ended after
// sending some of the names one txn changed resumes before that txn and
// sends all of them again.
func (w *Watcher[T]) Revision() int64 { return w.rev.Load() }

func (w *Watcher[T]) advance(rev int64) {
	if rev > w.rev.Load() { // only follow stores it
		w.rev.Store(rev)
	}
}

func (w *Watcher[T]) end(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	close(w.events)
}

// Watch lists every value at one revision R and then watches for changes
// from R+1: the events start with an EventPut per value in the snapshot and
// an EventSynced at R, then each change after R, none missed, none
// repeated. The list is read before Watch returns, so its errors are
// Watch's.
func (c *Config[T]) Watch(ctx context.Context) (*Watcher[T], error) {
	resp, err := c.node.Get(ctx, []byte(c.prefix), kvstore.WithPrefix())
	if err != nil {
		return nil, err
	}
	rev := resp.Header.Revision
	changes, err := c.watch(ctx, rev)
	if err != nil {
		return nil, err
	}
	w := &Watcher[T]{events: make(chan Event[T])}
	go func() {
		for _, item := range c.items(resp.KVs) {
			ev := Event[T]{Type: EventPut, Name: item.Name, New: item.Value, Revision: item.Meta.Revision, Err: item.Err}
			if !send(ctx, w, ev) {
				return
			}
		}
		if !send(ctx, w, Event[T]{Type: EventSynced, Revision: rev}) {
			return
		}
		w.rev.Store(rev)
		c.follow(ctx, w, changes)
	}()
	return w, nil
}

// WatchAfter watches for the changes after revision rev (no snapshot),
// as a Watcher that stopped at Revision rev would have gone on: through
// another member, or through its own after a restart. Old values come from
// the store's history. If the changes after rev were compacted, the
// watcher ends at once with an error matching kvstore.ErrCompacted.
func (c *Config[T]) WatchAfter(ctx context.Context, rev int64) (*Watcher[T], error) {
	if rev < 0 {
		return nil, fmt.Errorf("%w: %d", kvstore.ErrNegativeWatchRevision, rev)
	}
	changes, err := c.watch(ctx, rev)
	if err != nil {
		return nil, err
	}
	w := &Watcher[T]{events: make(chan Event[T])}
	w.rev.Store(rev)
	go c.follow(ctx, w, changes)
	return w, nil
}

// watch starts the store watch from rev+1. Its context is ctx: it ends
// with the watcher's goroutine.
func (c *Config[T]) watch(ctx context.Context, rev int64) (kvstore.WatchChan, error) {
	return c.node.Watch(ctx, []byte(c.prefix), kvstore.WithPrefix(), kvstore.WithRev(rev+1), kvstore.WithPrevKV())
}

// send delivers ev unless ctx ends first, which ends the watcher.
func send[T any](ctx context.Context, w *Watcher[T], ev Event[T]) bool {
	select {
	case w.events <- ev:
		return true
	case <-ctx.Done():
		w.end(ctx.Err())
		return false
	}
}

// event converts a store event of name.
func (c *Config[T]) event(name string, ev kvstore.Event) Event[T] {
	out := Event[T]{Name: name, Revision: ev.KV.ModRevision}
	if ev.PrevKV != nil {
		out.Old, _ = c.decode(name, ev.PrevKV)
	}
	if ev.Type == kvstore.EventDelete {
		out.Type = EventDelete
	} else {
		out.Type = EventPut
		out.New, out.Err = c.decode(name, &ev.KV)
	}
	return out
}

// follow turns the store's watch responses into events until the watch
// ends, and then ends w.
func (c *Config[T]) follow(ctx context.Context, w *Watcher[T], changes kvstore.WatchChan) {
	for resp := range changes {
		if resp.Canceled {
			err := resp.Err
			if errors.Is(err, kvstore.ErrCompacted) {
				err = fmt.Errorf("config: watch after revision %d: %w (compact revision %d)", w.Revision(), err, resp.CompactRevision)
			}
			w.end(err)
			return
		}
		for i, ev := range resp.Events {
			if name, ok := c.name(ev.KV.Key); ok {
				if !send(ctx, w, c.event(name, ev)) {
					return
				}
			}
			// Revision covers whole revisions only: a txn that changed
			// several names sends them one by one.
			if i+1 == len(resp.Events) || resp.Events[i+1].KV.ModRevision != ev.KV.ModRevision {
				w.advance(ev.KV.ModRevision)
			}
		}
		w.advance(resp.Revision) // every response is a bookmark
	}
	w.end(ctx.Err())
}
