package watch_test

import (
	"bytes"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// A follower that installs a snapshot keeps its watches correct: the events
// it skipped come from the restored store's history when it has them, and
// otherwise the watch is cancelled with the compact revision. Never a
// silent gap, never a duplicate.

type tracked struct {
	r     watch.Request
	start int64
	ch    <-chan watch.Response
	got   []watch.Response
}

func (e *env) track(r watch.Request, start int64) *tracked {
	e.t.Helper()
	if r.StartRevision != 0 {
		start = r.StartRevision
	}
	return &tracked{r: r, start: start, ch: e.watch(e.t.Context(), r)}
}

func (w *tracked) read() {
	rs, _ := available(w.ch)
	w.got = append(w.got, rs...)
}

func (w *tracked) drain() bool {
	rs, closed := drain(w.ch)
	w.got = append(w.got, rs...)
	return closed
}

func TestRestoredContinuesFromHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newFollowerEnv(t, watch.Config{BufferSize: 2, MaxBatchEvents: 8})
		for i := range 10 {
			e.put(fmt.Sprintf("k/%d", i%4), "before")
		}
		next := e.hubRevision() + 1
		synced := e.track(prefix("k/"), next)
		stalled := e.track(prefix("k/"), next) // falls behind, catching up during the restore
		future := e.track(watch.Request{Key: []byte("k/1"), StartRevision: next + 40}, 0)
		single := e.track(watch.Request{Key: []byte("k/2"), PrevKV: true}, next)
		for i := range 10 {
			e.put(fmt.Sprintf("k/%d", i%4), "synced")
			synced.read()
		}
		e.lagging = true
		for i := range 50 {
			e.put(fmt.Sprintf("k/%d", i%4), fmt.Sprint("missed", i))
		}
		// Started on the lagging follower: "from now" is the follower's now.
		during := e.track(prefix("k/"), e.hubRevision()+1)
		e.installSnapshot()
		for i := range 10 {
			e.put(fmt.Sprintf("k/%d", i%4), "after")
		}
		for _, w := range []*tracked{synced, stalled, future, single, during} {
			if w.drain() {
				t.Fatalf("watch %q from %d ended", w.r.Key, w.start)
			}
			sp := specOf(w.r, w.start)
			e.check(t, sp, w.got, false)
			if got, want := len(eventsOf(w.got)), len(e.expected(sp, e.s.Revision())); got != want {
				t.Fatalf("watch %q from %d: %d events, want %d", w.r.Key, w.start, got, want)
			}
		}
	})
}

func TestRestoredCancelsWhenCompacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newFollowerEnv(t, watch.Config{})
		for i := range 10 {
			e.put(fmt.Sprintf("k/%d", i%4), "before")
		}
		next := e.hubRevision() + 1
		synced := e.track(prefix("k/"), next)
		other := e.track(watch.Request{Key: []byte("z")}, next) // no events at all, still behind
		e.lagging = true
		for i := range 30 {
			e.put(fmt.Sprintf("k/%d", i%4), "missed")
		}
		e.compact(e.s.Revision() - 10)
		// Its start is above the compact revision: it goes on.
		future := e.track(watch.Request{Key: []byte("k/1"), StartRevision: e.s.Revision() - 5}, 0)
		e.installSnapshot()
		e.put("k/1", "after")
		for _, w := range []*tracked{synced, other} {
			if !w.drain() {
				t.Fatalf("watch %q not ended", w.r.Key)
			}
			end, _ := e.check(t, specOf(w.r, w.start), w.got, true)
			if last := w.got[len(w.got)-1]; end != endCompacted || last.CompactRevision != e.s.CompactRevision() {
				t.Fatalf("watch %q: ended %v with %+v, want cancelled with compact revision %d", w.r.Key, end, last, e.s.CompactRevision())
			}
		}
		if future.drain() {
			t.Fatal("future watch ended")
		}
		sp := specOf(future.r, future.start)
		e.check(t, sp, future.got, false)
		if got, want := len(eventsOf(future.got)), len(e.expected(sp, e.s.Revision())); got != want {
			t.Fatalf("future watch: %d events, want %d", got, want)
		}
	})
}

// A store restored to an older snapshot (a node restarting from its last
// snapshot) re-applies entries the watches have already delivered: they
// are skipped, not repeated.
func TestRestoredToAnOlderSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One-event batches and a two-response buffer: the watch is still
		// catching up when the store moves back, and reads history from a
		// store that is behind the hub until Restored is called.
		e := newFollowerEnv(t, watch.Config{BufferSize: 2, MaxBatchEvents: 1})
		for i := range 5 {
			e.put(fmt.Sprintf("k/%d", i), "v")
		}
		var old bytes.Buffer
		if _, err := e.f.Snapshot().WriteTo(&old); err != nil {
			t.Fatal(err)
		}
		next := e.hubRevision() + 1
		w := e.track(prefix("k/"), next)
		type op struct{ key, value string }
		var log []op
		for i := range 8 {
			o := op{fmt.Sprintf("k/%d", i%3), fmt.Sprint(i)}
			log = append(log, o)
			e.put(o.key, o.value)
		}
		if err := e.f.Restore(&old); err != nil {
			t.Fatal(err)
		}
		w.drain() // the watch's next read finds the store behind it: it waits
		e.h.Restored()
		for _, o := range log { // raft re-applies the log after the snapshot
			res, evs, err := e.f.Put(&mvcc.PutRequest{Key: []byte(o.key), Value: []byte(o.value)})
			if err != nil {
				t.Fatal(err)
			}
			e.h.Notify(res.Revision, evs)
		}
		e.put("k/x", "new")
		if w.drain() {
			t.Fatal("watch ended")
		}
		sp := specOf(w.r, w.start)
		e.check(t, sp, w.got, false)
		if got, want := len(eventsOf(w.got)), len(e.expected(sp, e.s.Revision())); got != want {
			t.Fatalf("%d events, want %d", got, want)
		}
	})
}
