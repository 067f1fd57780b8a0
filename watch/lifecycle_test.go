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

func TestCloseEndsEveryWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 2, MaxBatchEvents: 2})
		e.put("c/0", "v")
		start := e.s.Revision() + 1
		r := prefix("c/")
		idle := e.watch(t.Context(), watch.Request{Key: []byte("nothing")})
		full := e.watch(t.Context(), r)     // synced, channel full at Close
		catching := e.watch(t.Context(), r) // catching up, blocked in send at Close
		cancelled, cancel := context.WithCancel(t.Context())
		quiet := e.watch(cancelled, r)
		e.put("c/1", "v")
		e.put("c/2", "v") // full now holds 2
		for i := range 10 {
			e.txn(opPut(fmt.Sprintf("c/t%d", i), "a"), opPut(fmt.Sprintf("c/u%d", i), "b"))
		}
		synctest.Wait()
		// Make "full" synced again with a full channel: read it dry, let it
		// catch up, then fill it with two live revisions.
		var fullGot []watch.Response
		for {
			rs, _ := available(full)
			if len(rs) == 0 {
				break
			}
			fullGot = append(fullGot, rs...)
			synctest.Wait()
		}
		e.put("c/3", "v")
		e.put("c/4", "v")
		synctest.Wait()
		cancel()
		synctest.Wait()

		e.h.Close()
		e.h.Close()                                    // twice is fine
		e.h.Notify(e.s.Revision()+1, []mvcc.Event{{}}) // ignored after Close
		if _, err := e.h.Watch(t.Context(), r); !errors.Is(err, watch.ErrClosed) {
			t.Fatalf("watch after Close: %v", err)
		}

		rs := collect(t, idle)
		if len(rs) != 1 || !rs[0].Canceled || !errors.Is(rs[0].Err, watch.ErrClosed) {
			t.Fatalf("idle watch: %+v, want one ErrClosed response", rs)
		}
		fullGot = append(fullGot, collect(t, full)...)
		for name, rs := range map[string][]watch.Response{"full": fullGot, "catching": collect(t, catching)} {
			if end, _ := e.check(t, specOf(r, start), rs, true); end != endHubClosed {
				t.Fatalf("%s watch ended %v, want ErrClosed", name, end)
			}
		}
		if n := len(eventsOf(fullGot)); n != len(e.expected(specOf(r, start), e.s.Revision())) {
			t.Fatalf("full watch lost events at Close: %d", n)
		}
		for r := range quiet {
			if r.Canceled {
				t.Fatalf("watch whose context ended got %+v", r)
			}
		}
	})
}

func TestContextCancelClosesChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 2})
		ctx1, cancel1 := context.WithCancel(t.Context())
		ctx2, cancel2 := context.WithCancel(t.Context())
		synced := e.watch(ctx1, prefix("x/"))
		catching := e.watch(ctx2, prefix("x/"))
		for i := range 10 {
			e.put(fmt.Sprintf("x/%d", i), "v")
			if i < 1 {
				<-synced
			}
		}
		for len(synced) > 0 {
			<-synced
		}
		synctest.Wait() // catching is parked in its channel send
		cancel1()
		cancel2()
		synctest.Wait()
		for name, ch := range map[string]<-chan watch.Response{"synced": synced, "catching": catching} {
			for r := range ch {
				if r.Canceled || r.Err != nil {
					t.Fatalf("%s: context cancel produced %+v", name, r)
				}
			}
		}
		// Both are gone: the next write reaches nobody, and the bubble
		// reports any goroutine left behind.
		e.put("x/9", "v")
	})
}

func TestNotifyPanicsOnRevisionGoingBack(t *testing.T) {
	e := newEnv(t, watch.Config{})
	rev := e.put("k", "v")
	defer func() {
		if recover() == nil {
			t.Fatal("Notify at an old revision did not panic")
		}
	}()
	e.h.Notify(rev, []mvcc.Event{{KV: mvcc.KeyValue{Key: []byte("k"), ModRevision: rev}}})
}

// A revision applied without Notify (a state machine bug, or a call lost)
// is recovered from history by the next Notify, not skipped.
func TestNotifySkippedRevisionRecoveredFromHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{})
		r := prefix("k/")
		start := e.s.Revision() + 1
		ch := e.watch(t.Context(), r)
		e.put("k/1", "a")
		res, evs, err := e.s.Put(&mvcc.PutRequest{Key: []byte("k/2"), Value: []byte("b")})
		if err != nil {
			t.Fatal(err)
		}
		e.events = append(e.events, evs...) // applied, not notified
		_ = res
		e.put("k/3", "c")
		rs, _ := drain(ch)
		e.check(t, specOf(r, start), rs, false)
		if n := len(eventsOf(rs)); n != 3 {
			t.Fatalf("%d events, want 3", n)
		}
	})
}
