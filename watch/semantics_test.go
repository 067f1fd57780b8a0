package watch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// Tests pinning SEMANTICS.md rules 19-22 and the request options.

func TestRule19StartBelowCompactRevision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{})
		for i := range 10 {
			e.put("k", fmt.Sprint(i)) // revisions 2..11
		}
		e.compact(5)
		e.compact(8) // the compact revision "of that moment" is 8, not 5

		// Below: created, then cancelled with the compact revision.
		r := watch.Request{Key: []byte("k"), StartRevision: 3, CreatedNotify: true}
		rs := collect(t, e.watch(t.Context(), r))
		if len(rs) != 2 || !rs[0].Created || rs[0].Revision != 11 {
			t.Fatalf("rule 19: responses %+v, want created at 11, then cancelled", rs)
		}
		last := rs[1]
		if !last.Canceled || last.CompactRevision != 8 || !errors.Is(last.Err, mvcc.ErrCompacted) || len(last.Events) != 0 {
			t.Fatalf("rule 19: last response %+v, want cancelled with compact revision 8", last)
		}
		// Exactly the compact revision is fine: replays 8..11.
		r = watch.Request{Key: []byte("k"), StartRevision: 8}
		rs, closed := drain(e.watch(t.Context(), r))
		e.check(t, specOf(r, 8), rs, closed)
		if evs := eventsOf(rs); closed || len(evs) != 4 || evs[0].KV.ModRevision != 8 {
			t.Fatalf("rule 19: watch from the compact revision got %q (closed %v)", describe(evs), closed)
		}
		// Negative is refused.
		if _, err := e.h.Watch(t.Context(), watch.Request{Key: []byte("k"), StartRevision: -1}); !errors.Is(err, watch.ErrNegativeRevision) {
			t.Fatalf("rule 19: negative start revision: %v, want ErrNegativeRevision", err)
		}
		// It is checked before the range, as etcd does (conformance seed 1004).
		if _, err := e.h.Watch(t.Context(), watch.Request{Key: []byte("k"), End: []byte("a"), StartRevision: -1}); !errors.Is(err, watch.ErrNegativeRevision) {
			t.Fatalf("rule 19: negative start revision with an empty range: %v, want ErrNegativeRevision", err)
		}
		// A future revision delivers from there on.
		r = watch.Request{Key: []byte("k"), StartRevision: 14}
		ch := e.watch(t.Context(), r)
		for i := range 4 {
			e.put("k", fmt.Sprint("f", i)) // 12..15
		}
		rs, closed = drain(ch)
		e.check(t, specOf(r, 14), rs, closed)
		if evs := eventsOf(rs); len(evs) != 2 || evs[0].KV.ModRevision != 14 {
			t.Fatalf("rule 19: future start got %q", describe(evs))
		}
	})
}

func TestRule19CompactionTheHubWasNotToldAbout(t *testing.T) {
	// The store is compacted but Compacted has not been called yet (the
	// state machine is between the two calls): the history read itself
	// finds the compaction.
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{})
		for i := range 10 {
			e.put("k", fmt.Sprint(i))
		}
		if _, err := e.s.Compact(6); err != nil {
			t.Fatal(err)
		}
		e.compactions = append(e.compactions, 6)
		r := watch.Request{Key: []byte("k"), StartRevision: 2}
		rs := collect(t, e.watch(t.Context(), r))
		if end, _ := e.check(t, specOf(r, 2), rs, true); end != endCompacted || rs[len(rs)-1].CompactRevision != 6 {
			t.Fatalf("rule 19: %+v, want cancelled with compact revision 6", rs)
		}
	})
}

func TestRule20Ranges(t *testing.T) {
	tests := []struct {
		key, end string
		err      error
		sees     []string // of the keys below, in write order
	}{
		{key: "b", end: "a", err: watch.ErrInvalidRange},
		{key: "b", end: "b", err: watch.ErrInvalidRange},
		{key: "b", end: "\x00\x01", err: watch.ErrInvalidRange},
		{key: "", end: "c", sees: []string{"\x00", "\x01", "a", "b"}}, // empty key with an end: from "\x00"
		{key: "", sees: []string{"\x00"}},                             // empty key alone: "\x00"
		{key: "", end: "\x00", sees: []string{"\x00", "\x01", "a", "b", "c", "d"}},
		{key: "b", end: "\x00", sees: []string{"b", "c", "d"}},
		{key: "b", end: "c", sees: []string{"b"}},
		{key: "b", sees: []string{"b"}},
	}
	keys := []string{"\x00", "\x01", "a", "b", "c", "d"}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q-%q", tt.key, tt.end), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, watch.Config{})
				r := watch.Request{Key: []byte(tt.key), End: []byte(tt.end)}
				ch, err := e.h.Watch(t.Context(), r)
				if tt.err != nil {
					if !errors.Is(err, tt.err) || ch != nil {
						t.Fatalf("rule 20: error %v, want %v", err, tt.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					e.put(k, "v")
				}
				rs, _ := drain(ch)
				var got []string
				for _, ev := range eventsOf(rs) {
					got = append(got, string(ev.KV.Key))
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.sees) {
					t.Fatalf("rule 20: saw %q, want %q", got, tt.sees)
				}
			})
		})
	}
}

func TestRule21PrevKV(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{})
		withPrev := watch.Request{Key: []byte("k"), PrevKV: true}
		without := watch.Request{Key: []byte("k")}
		live := e.watch(t.Context(), withPrev)
		liveNo := e.watch(t.Context(), without)
		e.put("k", "1")        // 2: create, no prev
		e.put("k", "2")        // 3: prev 1
		e.del("k", "")         // 4: prev 2
		e.put("k", "3")        // 5: no prev (deleted before)
		e.put("k", "4")        // 6: prev 3
		e.txn(opPut("k", "5")) // 7: prev 4
		e.compact(6)

		want := []string{"<nil>", "1", "2", "<nil>", "3", "4"}
		prevs := func(rs []watch.Response) []string {
			var out []string
			for _, ev := range eventsOf(rs) {
				if ev.PrevKV == nil {
					out = append(out, "<nil>")
				} else {
					out = append(out, string(ev.PrevKV.Value))
				}
			}
			return out
		}
		rs, _ := drain(live)
		e.check(t, specOf(withPrev, 2), rs, false)
		if got := prevs(rs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("rule 21: live prev kvs %q, want %q", got, want)
		}
		rs, _ = drain(liveNo)
		e.check(t, specOf(without, 2), rs, false)

		// From history at exactly the compact revision: the event at 6 has
		// no prev kv (that version is gone), the one at 7 has it.
		r := withPrev
		r.StartRevision = 6
		rs, _ = drain(e.watch(t.Context(), r))
		e.check(t, specOf(r, 6), rs, false)
		if got := prevs(rs); fmt.Sprint(got) != fmt.Sprint([]string{"<nil>", "4"}) {
			t.Fatalf("rule 21: prev kvs from the compact revision %q, want [<nil> 4]", got)
		}
	})
}

func TestRule22CompactionAndCatchingUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 2, MaxBatchEvents: 2})
		e.put("other", "v")
		start := e.s.Revision() + 1
		r := prefix("c/")
		r.PrevKV = true
		stalled := e.watch(t.Context(), r) // never read until the end
		synced := e.watch(t.Context(), r)
		var got []watch.Response
		for i := range 30 {
			e.put(fmt.Sprintf("c/%d", i%3), fmt.Sprint(i))
			rs, _ := available(synced)
			got = append(got, rs...)
		}
		synctest.Wait()
		// The stalled watch is catching up, far behind: compacting past
		// its next revision cancels it (rule 22)...
		e.compact(e.s.Revision() - 5)
		// ...while the synced one is not affected and keeps receiving.
		e.put("c/after", "x")
		rs, _ := available(synced)
		got = append(got, rs...)
		if end, covered := e.check(t, specOf(r, start), got, false); end != endOpen || covered != e.s.Revision() {
			t.Fatalf("rule 22: synced watch ended %v at %d", end, covered)
		}

		rs = collect(t, stalled)
		end, covered := e.check(t, specOf(r, start), rs, true)
		last := rs[len(rs)-1]
		if end != endCompacted || last.CompactRevision != e.s.CompactRevision() {
			t.Fatalf("rule 22: stalled watch ended %v with %+v, want cancelled with compact revision %d", end, last, e.s.CompactRevision())
		}
		if covered == start-1 {
			t.Fatal("the stalled watch delivered nothing before its cancel")
		}
	})
}

func TestFilters(t *testing.T) {
	writes := func(e *env) {
		for i := range 12 {
			e.put(fmt.Sprintf("f/%d", i%3), "v")
			if i%4 == 3 {
				e.del("f/", "f0")
			}
			if i%5 == 4 {
				e.txn(opDel("f/0", "f/1"), opPut("f/x", "1"), opPut("f/z", "2"))
			}
		}
	}
	for _, filter := range []struct {
		name      string
		put, dele bool
	}{{"puts", true, false}, {"deletes", false, true}, {"both", true, true}} {
		t.Run(filter.name, func(t *testing.T) {
			r := prefix("f/")
			r.FilterPut, r.FilterDelete = filter.put, filter.dele
			runPaths(t, r, writes, func(t *testing.T, rs []watch.Response) {
				for _, ev := range eventsOf(rs) {
					if (ev.Type == mvcc.EventPut && filter.put) || (ev.Type == mvcc.EventDelete && filter.dele) {
						t.Fatalf("filtered %v event delivered", ev.Type)
					}
				}
			})
		})
	}
}

func TestValidationErrors(t *testing.T) {
	e := newEnv(t, watch.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.h.Watch(ctx, watch.Request{Key: []byte("k")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("watch with an ended context: %v", err)
	}
	e.h.Close()
	if _, err := e.h.Watch(t.Context(), watch.Request{Key: []byte("k")}); !errors.Is(err, watch.ErrClosed) {
		t.Fatalf("watch after Close: %v", err)
	}
	for _, err := range []error{watch.ErrClosed, watch.ErrInvalidRange, watch.ErrNegativeRevision} {
		if msg := err.Error(); len(msg) < 7 || msg[:7] != "watch: " {
			t.Fatalf("error %q lacks the package prefix", msg)
		}
	}
	noHubGoroutines(t)
}
