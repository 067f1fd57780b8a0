package watch_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// Tests of etcd's six watch guarantees, each run through the three ways a
// watch gets its events: live from Notify, replayed from history, and
// catching up after its channel filled (a tiny buffer, one-event batches,
// and a consumer that reads only after every write).

type deliveryPath struct {
	name   string
	cfg    watch.Config
	replay bool // watch from the first write's revision after the writes
}

var paths = []deliveryPath{
	{name: "live"},
	{name: "history", replay: true},
	{name: "catch-up", cfg: watch.Config{BufferSize: 2, MaxBatchEvents: 1}},
}

// drain reads everything the hub will deliver without new writes: it lets
// catch-up goroutines refill the channel until nothing more comes.
func drain(ch <-chan watch.Response) (out []watch.Response, closed bool) {
	for {
		synctest.Wait()
		rs, c := available(ch)
		out = append(out, rs...)
		if c || len(rs) == 0 {
			return out, c
		}
	}
}

// runPaths runs writes with a watch for r open through each delivery path,
// checks the stream against the oracle and hands it to inspect.
func runPaths(t *testing.T, r watch.Request, writes func(e *env), inspect func(t *testing.T, rs []watch.Response)) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, p.cfg)
				start := e.s.Revision() + 1
				var ch <-chan watch.Response
				if p.replay {
					writes(e)
					r := r
					r.StartRevision = start
					ch = e.watch(t.Context(), r)
				} else {
					ch = e.watch(t.Context(), r)
					writes(e)
				}
				rs, closed := drain(ch)
				if closed {
					t.Fatal("watch ended")
				}
				sp := specOf(r, start)
				e.check(t, sp, rs, closed)
				if got, want := len(eventsOf(rs)), len(e.expected(sp, e.s.Revision())); got != want {
					t.Fatalf("delivered %d events, want all %d", got, want)
				}
				if inspect != nil {
					inspect(t, rs)
				}
			})
		})
	}
}

func prefix(p string) watch.Request {
	return watch.Request{Key: []byte(p), End: mvcc.PrefixEnd([]byte(p))}
}

func describe(evs []mvcc.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%d.%d %v %s", ev.KV.ModRevision, ev.Sub, ev.Type, ev.KV.Key)
	}
	return out
}

func TestOrderedByRevisionAndTxnOpOrder(t *testing.T) {
	writes := func(e *env) {
		e.put("a/1", "x")                                                              // 2
		e.txn(opPut("a/3", "1"), opDel("a/1", ""), opPut("b", "x"), opPut("a/2", "2")) // 3
		e.put("a/2", "3")                                                              // 4
		e.txn(opPut("a/9", "9"), opPut("a/0", "0"))                                    // 5
		e.del("a/", "a0")                                                              // 6: key order
	}
	want := []string{
		"2.0 PUT a/1",
		"3.0 PUT a/3", "3.1 DELETE a/1", "3.3 PUT a/2",
		"4.0 PUT a/2",
		"5.0 PUT a/9", "5.1 PUT a/0",
		"6.0 DELETE a/0", "6.1 DELETE a/2", "6.2 DELETE a/3", "6.3 DELETE a/9",
	}
	runPaths(t, prefix("a/"), writes, func(t *testing.T, rs []watch.Response) {
		if got := describe(eventsOf(rs)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("events\n%q\nwant\n%q", got, want)
		}
	})
}

func TestUniqueAndReliable(t *testing.T) {
	// Overlapping keys and ranges, one key written over and over: every
	// event exactly once, none missing (check compares with the oracle).
	writes := func(e *env) {
		for i := range 200 {
			switch i % 5 {
			case 0, 1:
				e.put("k/same", fmt.Sprint(i))
			case 2:
				e.txn(opPut(fmt.Sprintf("k/%03d", i), "v"), opPut("other", "v"), opPut("k/same2", fmt.Sprint(i)))
			case 3:
				e.del("k/0", "k/1")
			case 4:
				e.put("elsewhere", "v")
			}
		}
	}
	runPaths(t, prefix("k/"), writes, nil)
	runPaths(t, watch.Request{Key: []byte("k/same")}, writes, nil)
	runPaths(t, watch.Request{Key: []byte("k/1"), End: []byte{0}}, writes, nil)
}

func TestAtomicRevisionNeverSplit(t *testing.T) {
	const big = 50
	writes := func(e *env) {
		e.put("t/x", "1")
		ops := make([]mvcc.Op, big)
		for i := range ops {
			ops[i] = opPut(fmt.Sprintf("t/%02d", i), "v")
		}
		e.txn(ops...)
		e.del("t/", "t0") // big+1 deletes in one revision
		e.put("t/y", "2")
	}
	// The catch-up path has a 2-response buffer and 1-event batches: the
	// big revisions must still come whole (check verifies every revision).
	runPaths(t, prefix("t/"), writes, func(t *testing.T, rs []watch.Response) {
		// check verified that no revision is split; pin the big one too.
		for _, r := range rs {
			n := 0
			for _, ev := range r.Events {
				if ev.KV.ModRevision == 3 {
					n++
				}
			}
			if n != 0 && n != big {
				t.Fatalf("revision 3 split: %d of its %d events in one response", n, big)
			}
		}
	})
}

func TestResumable(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, p.cfg)
				r := prefix("r/")
				r.PrevKV = true
				start := e.s.Revision() + 1
				ctx, cancel := context.WithCancel(t.Context())
				ch := e.watch(ctx, r)
				for i := range 40 {
					e.put(fmt.Sprintf("r/%d", i%7), fmt.Sprint(i))
					if i%9 == 0 {
						e.txn(opPut("r/a", "1"), opDel("r/0", ""), opPut("r/b", "2"))
					}
				}
				// Read a few responses, then stop the watch mid-stream.
				var first []watch.Response
				for len(first) < 5 {
					first = append(first, <-ch)
				}
				cancel()
				first = append(first, collect(t, ch)...)
				_, last := e.check(t, specOf(r, start), first, true)
				// More writes while no watch is open, then resume from
				// last+1 (which may be anywhere in the stream: the stopped
				// watch races its context against its consumer).
				for i := range 5 {
					e.put(fmt.Sprintf("r/%d", i), "gap")
				}
				r2 := r
				r2.StartRevision = last + 1
				ch2 := e.watch(t.Context(), r2)
				e.put("r/late", "x")
				rest, _ := drain(ch2)
				all := append(first[:len(first):len(first)], rest...)
				if _, covered := e.check(t, specOf(r, start), all, false); covered != e.s.Revision() {
					t.Fatalf("resumed stream covers up to %d, store at %d", covered, e.s.Revision())
				}
			})
		})
	}
}

func TestBookmarkRequestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 2, MaxBatchEvents: 3})
		synced := e.watch(t.Context(), prefix("p/"))
		idle := e.watch(t.Context(), watch.Request{Key: []byte("nothing")})
		start := e.s.Revision() + 1
		lagging := e.watch(t.Context(), prefix("p/")) // never read until the end
		full := e.watch(t.Context(), watch.Request{Key: []byte("q/full")})
		e.put("q/full", "1")
		e.put("q/full", "2") // full's channel is full, and it is still synced
		var got []watch.Response
		for i := range 30 {
			e.put(fmt.Sprintf("p/%d", i%4), "v")
			rs, _ := available(synced)
			got = append(got, rs...)
		}
		synctest.Wait()
		e.h.RequestProgress()
		synctest.Wait()
		rs, _ := available(synced)
		got = append(got, rs...)
		if p := got[len(got)-1]; !p.IsProgressNotify() || p.Revision != e.s.Revision() {
			t.Fatalf("synced watch: last response %+v, want progress at %d", p, e.s.Revision())
		}
		e.check(t, specOf(prefix("p/"), start), got, false)

		rs, _ = available(idle)
		if len(rs) != 1 || !rs[0].IsProgressNotify() || rs[0].Revision != e.s.Revision() {
			t.Fatalf("idle watch: %+v, want one progress at %d", rs, e.s.Revision())
		}

		// The full watch gets its progress once the consumer makes room.
		rs, _ = drain(full)
		if len(rs) != 3 || !rs[2].IsProgressNotify() || rs[2].Revision != e.s.Revision() {
			t.Fatalf("full watch: %+v, want two events and progress at %d", rs, e.s.Revision())
		}

		// The lagging watch is catching up: it gets the progress once it
		// has caught up, after every event (bookmark).
		rs, _ = drain(lagging)
		e.check(t, specOf(prefix("p/"), start), rs, false)
		if p := rs[len(rs)-1]; !p.IsProgressNotify() || p.Revision != e.s.Revision() {
			t.Fatalf("lagging watch: last response %+v, want progress at %d", p, e.s.Revision())
		}
		for _, r := range rs[:len(rs)-1] {
			if r.IsProgressNotify() {
				t.Fatalf("lagging watch got progress %+v before catching up", r)
			}
		}
	})
}

func TestProgressNotifyInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{ProgressInterval: time.Second})
		idle := e.watch(t.Context(), watch.Request{Key: []byte("idle"), ProgressNotify: true})
		busy := e.watch(t.Context(), watch.Request{Key: []byte("busy"), ProgressNotify: true})
		quiet := e.watch(t.Context(), watch.Request{Key: []byte("idle")}) // no ProgressNotify
		for range 3 {
			time.Sleep(time.Second / 2)
			e.put("busy", "v")
			time.Sleep(time.Second / 2)
			synctest.Wait()
		}
		rs, _ := available(idle)
		if len(rs) != 3 {
			t.Fatalf("idle watch got %d responses in 3 intervals, want 3 progress notifications", len(rs))
		}
		for _, r := range rs {
			if !r.IsProgressNotify() {
				t.Fatalf("idle watch got %+v", r)
			}
		}
		rs, _ = available(busy)
		for _, r := range rs {
			if r.IsProgressNotify() {
				t.Fatalf("busy watch got a progress notification %+v", r)
			}
		}
		if len(rs) != 3 {
			t.Fatalf("busy watch got %d responses, want its 3 events", len(rs))
		}
		if rs, _ := available(quiet); len(rs) != 0 {
			t.Fatalf("watch without ProgressNotify got %+v", rs)
		}
	})
}
