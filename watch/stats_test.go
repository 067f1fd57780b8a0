package watch_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/watch"
)

// Stats counts the watches, those catching up from history, and every
// event delivered, live or from history.
func TestStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, watch.Config{BufferSize: 2, MaxBatchEvents: 1})
		if s := e.h.Stats(); s != (watch.Stats{}) {
			t.Fatalf("new hub: %+v", s)
		}
		live := e.watch(t.Context(), prefix("k"))
		ctx, cancel := context.WithCancel(t.Context())
		slow := e.watch(ctx, prefix("k"))
		e.put("k1", "v")
		synctest.Wait()
		if s := e.h.Stats(); s != (watch.Stats{Watches: 2, EventsSent: 2}) {
			t.Fatalf("two synced watches, one event each: %+v", s)
		}
		drain := func(ch <-chan watch.Response) int {
			rs, _ := available(ch)
			return len(eventsOf(rs))
		}
		drain(live) // keep live synced; slow's channel fills up
		for i := range 4 {
			e.put(fmt.Sprint("k", i+2), "v")
			synctest.Wait()
			drain(live)
		}
		if s := e.h.Stats(); s.Watches != 2 || s.CatchingUp != 1 {
			t.Fatalf("one watch behind: %+v", s)
		}
		got := 0
		for n := -1; n != 0; synctest.Wait() { // read slow dry: it catches up
			n = drain(slow)
			got += n
		}
		s := e.h.Stats()
		if s.CatchingUp != 0 {
			t.Fatalf("a watch still catching up after being read dry: %+v", s)
		}
		if want := uint64(5 + 5); s.EventsSent != want || got != 5 {
			t.Fatalf("events: stats %+v (want %d sent), slow watch read %d of 5", s, want, got)
		}
		cancel()
		synctest.Wait()
		if s := e.h.Stats(); s.Watches != 1 {
			t.Fatalf("after cancelling one: %+v", s)
		}
	})
}
