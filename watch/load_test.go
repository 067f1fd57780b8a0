package watch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// A consumer that stops reading while 10,000 writes are applied, then
// resumes: Notify never blocks on it (the writes run on this goroutine
// while the consumer is parked; in a synctest bubble a blocked Notify
// would be reported as a deadlock), and no event is lost or repeated.
func TestSlowConsumerLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{})
		r := prefix("s/")
		r.PrevKV = true
		start := e.s.Revision() + 1
		ch := e.watch(t.Context(), r)
		fast := e.watch(t.Context(), r) // read all along: stays synced
		resume := make(chan struct{})
		done := make(chan []watch.Response)
		go func() {
			<-resume
			var rs []watch.Response
			for r := range ch {
				rs = append(rs, r)
			}
			done <- rs
		}()
		var fastGot []watch.Response
		for i := range 10_000 {
			e.put(fmt.Sprintf("s/%d", i%100), fmt.Sprint(i))
			if i%1000 == 0 {
				e.put("unwatched", "x")
			}
			rs, _ := available(fast)
			fastGot = append(fastGot, rs...)
		}
		synctest.Wait()
		if n := len(ch); n != cap(ch) {
			t.Fatalf("stalled consumer's channel holds %d of %d", n, cap(ch))
		}
		close(resume)
		synctest.Wait() // the consumer has read everything the hub had
		e.h.Close()
		rs := <-done
		end, covered := e.check(t, specOf(r, start), rs, true)
		if end != endHubClosed || covered != e.s.Revision() {
			t.Fatalf("stalled watch ended %v at %d, want ErrClosed at %d", end, covered, e.s.Revision())
		}
		if n := len(eventsOf(rs)); n != 10_000 {
			t.Fatalf("stalled watch got %d events, want 10000", n)
		}
		e.check(t, specOf(r, start), fastGot, false)
		if n := len(eventsOf(fastGot)); n != 10_000 {
			t.Fatalf("fast watch got %d events, want 10000", n)
		}
	})
}

// A consumer that reads in bursts: the watch falls behind and catches up
// over and over, and each handoff between history and Notify is exact.
func TestRepeatedFallBehindAndCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 2, MaxBatchEvents: 4})
		r := prefix("b/")
		start := e.s.Revision() + 1
		ch := e.watch(t.Context(), r)
		rng := rand.New(rand.NewPCG(1, 2))
		var got []watch.Response
		for i := range 3000 {
			e.put(fmt.Sprintf("b/%d", rng.IntN(20)), fmt.Sprint(i))
			if rng.IntN(50) == 0 {
				synctest.Wait() // let catch-up goroutines run between writes
				rs, _ := available(ch)
				got = append(got, rs...)
			}
		}
		rs, _ := drain(ch)
		got = append(got, rs...)
		if _, covered := e.check(t, specOf(r, start), got, false); covered != e.s.Revision() {
			t.Fatalf("covered %d, store at %d", covered, e.s.Revision())
		}
	})
}

func TestThousandsOfWatchers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{})
		rng := rand.New(rand.NewPCG(3, 4))
		key := func() string { return fmt.Sprintf("t/%02d/%02d", rng.IntN(30), rng.IntN(30)) }
		type w struct {
			r     watch.Request
			start int64
			ch    <-chan watch.Response
			got   []watch.Response
		}
		var ws []*w
		for i := range 2000 {
			var r watch.Request
			switch i % 4 {
			case 0:
				r = watch.Request{Key: []byte(key())}
			case 1:
				r = prefix(fmt.Sprintf("t/%02d/", rng.IntN(30)))
			case 2:
				lo, hi := key(), key()
				if lo >= hi {
					lo, hi = hi, lo+"\x00"
				}
				r = watch.Request{Key: []byte(lo), End: []byte(hi)}
			case 3:
				r = watch.Request{Key: []byte(key()), End: []byte{0}, PrevKV: true}
			}
			ws = append(ws, &w{r: r, start: e.s.Revision() + 1, ch: e.watch(t.Context(), r)})
			if i%10 == 0 {
				e.put(key(), fmt.Sprint(i))
			}
		}
		for i := range 300 {
			if i%7 == 0 {
				e.txn(opDel("t/05/", "t/06/"), opPut("u/x", "b"), opPut(fmt.Sprintf("t/%02d/x", 6+rng.IntN(20)), "a"))
			} else {
				e.put(key(), fmt.Sprint(i))
			}
			if i%20 == 0 {
				for _, w := range ws {
					rs, _ := available(w.ch)
					w.got = append(w.got, rs...)
				}
			}
		}
		for more := true; more; {
			synctest.Wait()
			more = false
			for _, w := range ws {
				rs, _ := available(w.ch)
				w.got = append(w.got, rs...)
				more = more || len(rs) > 0
			}
		}
		for _, w := range ws {
			sp := specOf(w.r, w.start)
			e.check(t, sp, w.got, false)
			if got, want := len(eventsOf(w.got)), len(e.expected(sp, e.s.Revision())); got != want {
				t.Fatalf("watch %q-%q: %d events, want %d", w.r.Key, w.r.End, got, want)
			}
		}
	})
}

// Cancelling thousands of watches (half synced, half catching up) frees
// them: every channel closes, every goroutine ends (the bubble checks),
// and Notify afterwards finds nobody.
func TestCancelManyWatchers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 2})
		var cancels []context.CancelFunc
		var chans []<-chan watch.Response
		for i := range 2000 {
			ctx, cancel := context.WithCancel(t.Context())
			cancels = append(cancels, cancel)
			chans = append(chans, e.watch(ctx, prefix(fmt.Sprintf("x/%d", i%2))))
		}
		for i := range 10 {
			e.put(fmt.Sprintf("x/%d", i%2), "v") // x/1 watches fall behind
		}
		synctest.Wait()
		for _, c := range cancels {
			c()
		}
		for _, ch := range chans {
			for r := range ch {
				if r.Canceled {
					t.Fatalf("context cancel produced a final response %+v", r)
				}
			}
		}
		synctest.Wait()
		e.put("x/0", "after") // no watcher left: must not panic or send
	})
}

// Notify's cost follows the matching watchers: with 10,000 idle watches
// on other keys it allocates nothing for a write they do not watch.
func TestNotifyIdleWatchersAllocateNothing(t *testing.T) {
	s := mvcc.New(mvcc.Config{})
	defer s.Close()
	h := watch.NewHub(s, watch.Config{})
	defer h.Close()
	for i := range 10_000 {
		r := watch.Request{Key: []byte(fmt.Sprintf("idle/%05d", i))}
		if i%2 == 1 {
			r = prefix(fmt.Sprintf("idle/%05d/", i))
		}
		if _, err := h.Watch(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	_, evs, _ := s.Put(&mvcc.PutRequest{Key: []byte("busy"), Value: []byte("v")})
	rev := s.Revision()
	h.Notify(rev, evs)
	allocs := testing.AllocsPerRun(1000, func() {
		rev++
		h.Notify(rev, evs) // the same events each time: the store is not consulted
	})
	if allocs != 0 {
		t.Fatalf("Notify with 10,000 idle watches allocates %.1f times", allocs)
	}
	h.Close()
	noHubGoroutines(t)
}

// A delivery to more than 2 × 256 watchers is shared between goroutines,
// one per processor (hub.go, notifyAll). Each watch still gets exactly its
// events, in order, with prev kvs and filters as it asked, whether it stays
// synced or falls behind mid-delivery and catches up; and the hub's count
// of events sent adds up the parts.
func TestLargeDeliverySharedAcrossProcessors(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // parts even on a small machine
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 4})
		type w struct {
			r     watch.Request
			start int64
			ch    <-chan watch.Response
			got   []watch.Response
			slow  bool // read only at the end: its channel fills and it catches up
		}
		var ws []*w
		for i := range 1500 {
			r := prefix("p/")
			switch i % 5 {
			case 1:
				r.PrevKV = true
			case 2:
				r.FilterDelete = true
			case 3:
				r.FilterPut = true
				r.PrevKV = true
			case 4:
				r = watch.Request{Key: []byte(fmt.Sprintf("p/%d", i%7))}
			}
			ws = append(ws, &w{r: r, start: e.s.Revision() + 1, ch: e.watch(t.Context(), r), slow: i%11 == 0})
		}
		read := func(all bool) {
			for _, w := range ws {
				if all || !w.slow {
					rs, _ := available(w.ch)
					w.got = append(w.got, rs...)
				}
			}
		}
		for i := range 60 {
			if i%6 == 5 {
				e.txn(opDel("p/0", "p/4"), opPut("p/9", "t"), opPut("q/1", "unwatched"))
			} else {
				e.put(fmt.Sprintf("p/%d", i%7), fmt.Sprint(i))
			}
			read(false)
		}
		for more := true; more; {
			synctest.Wait()
			n := 0
			for _, w := range ws {
				n -= len(w.got)
			}
			read(true)
			for _, w := range ws {
				n += len(w.got)
			}
			more = n > 0
		}
		var received uint64
		for _, w := range ws {
			sp := specOf(w.r, w.start)
			e.check(t, sp, w.got, false)
			evs := eventsOf(w.got)
			if want := len(e.expected(sp, e.s.Revision())); len(evs) != want {
				t.Fatalf("watch %q-%q (slow %v): %d events, want %d", w.r.Key, w.r.End, w.slow, len(evs), want)
			}
			received += uint64(len(evs))
		}
		if s := e.h.Stats(); s.EventsSent != received || s.CatchingUp != 0 {
			t.Fatalf("stats %+v after every watch read %d events and caught up", s, received)
		}
	})
}
