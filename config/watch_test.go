package config_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/config"
	"github.com/kvstore/kvstore/kvtest"
)

func recv[T any](t *testing.T, w *config.Watcher[T]) config.Event[T] {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	panic("unreachable")
}

type change struct {
	name string
	rev  int64
}

// A watch started while writers write through every member: the
// snapshot and the changes after it add up to exactly the acknowledged
// writes, each change once, in revision order, and the view it builds
// equals the store's.
func TestWatchStartsFromAConsistentSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		var (
			mu    sync.Mutex
			acked []change
			wg    sync.WaitGroup
			stop  = make(chan struct{})
		)
		for i := range 3 {
			cfg := newConfig[Settings](t, c.Nodes()[i])
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					name := fmt.Sprint("svc", (i+n)%4)
					var meta config.Meta
					var err error
					if n%5 == 4 {
						var deleted bool
						deleted, err = cfg.Delete(ctx, name)
						if deleted {
							meta.Revision = revision(t, c.Nodes()[i]) // not exact; deletes are checked by the final view
						}
					} else {
						meta, err = cfg.Put(ctx, name, Settings{LogLevel: "info", RateLimit: n})
					}
					if err != nil {
						t.Error(err)
						return
					}
					if n%5 != 4 {
						mu.Lock()
						acked = append(acked, change{name, meta.Revision})
						mu.Unlock()
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		time.Sleep(20 * time.Millisecond)
		watched := c.Followers()[0]
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		w, err := newConfig[Settings](t, watched).Watch(wctx)
		if err != nil {
			t.Fatal(err)
		}
		view := map[string]Settings{}
		var snapshotRev int64
		for synced := false; !synced; {
			ev := recv(t, w)
			switch ev.Type {
			case config.EventPut:
				view[ev.Name] = ev.New
			case config.EventSynced:
				snapshotRev, synced = ev.Revision, true
			default:
				t.Fatalf("%v event in the snapshot", ev.Type)
			}
		}
		time.Sleep(50 * time.Millisecond)
		close(stop)
		wg.Wait()
		final, finalRev, err := newConfig[Settings](t, watched).List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[change]bool{}
		last := snapshotRev
		for last < finalRev { // every revision changed a name
			ev := recv(t, w)
			if ev.Revision <= snapshotRev || ev.Revision < last {
				t.Fatalf("event at %d after the snapshot at %d and an event at %d", ev.Revision, snapshotRev, last)
			}
			last = ev.Revision
			switch ev.Type {
			case config.EventPut:
				if ev.Err != nil {
					t.Fatal(ev.Err)
				}
				k := change{ev.Name, ev.Revision}
				if seen[k] {
					t.Fatalf("%v delivered twice", k)
				}
				seen[k] = true
				view[ev.Name] = ev.New
			case config.EventDelete:
				delete(view, ev.Name)
			}
		}
		for _, a := range acked {
			if a.rev > snapshotRev && !seen[a] {
				t.Fatalf("acknowledged write %v after the snapshot at %d was never delivered", a, snapshotRev)
			}
		}
		if len(seen) == 0 {
			t.Fatal("no change after the snapshot: the test did not race the writers")
		}
		if len(final) != len(view) {
			t.Fatalf("view has %d values, the store %d", len(view), len(final))
		}
		for _, item := range final {
			if got, ok := view[item.Name]; !ok || got.RateLimit != item.Value.RateLimit {
				t.Fatalf("view %s = %+v, store %+v", item.Name, got, item.Value)
			}
		}
	})
}

// Events carry old and new values; an undecodable value is an error event
// and the watch goes on.
func TestWatchEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		node := c.Followers()[0]
		cfg := newConfig[Settings](t, node)
		if _, err := cfg.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: 1}); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		w, err := cfg.Watch(wctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev := recv(t, w); ev.Type != config.EventPut || ev.Name != "api" || ev.New.RateLimit != 1 {
			t.Fatalf("snapshot event %+v", ev)
		}
		if ev := recv(t, w); ev.Type != config.EventSynced {
			t.Fatalf("after the snapshot: %+v", ev)
		}
		meta, err := cfg.Put(ctx, "api", Settings{LogLevel: "warn", RateLimit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if ev := recv(t, w); ev.Type != config.EventPut || ev.Old.RateLimit != 1 || ev.New.RateLimit != 2 || ev.Revision != meta.Revision {
			t.Fatalf("update event %+v", ev)
		}
		if _, err := c.WaitLeader().Put(ctx, []byte("app/settings/api"), []byte("[broken")); err != nil {
			t.Fatal(err)
		}
		ev := recv(t, w)
		var derr *config.DecodeError
		if ev.Type != config.EventPut || !errors.As(ev.Err, &derr) || derr.Name != "api" || ev.Old.RateLimit != 2 || ev.New.LogLevel != "" {
			t.Fatalf("undecodable event %+v", ev)
		}
		if _, err := cfg.Delete(ctx, "api"); err != nil {
			t.Fatal(err)
		}
		if ev := recv(t, w); ev.Type != config.EventDelete || ev.Name != "api" {
			t.Fatalf("delete event %+v", ev)
		}
		// Not a name: no event.
		if _, err := node.Put(ctx, []byte("app/settings/x/y"), []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Put(ctx, "db", Settings{LogLevel: "info"}); err != nil {
			t.Fatal(err)
		}
		if ev := recv(t, w); ev.Name != "db" {
			t.Fatalf("event %+v, want db's", ev)
		}
		cancel()
		for range w.Events() {
		}
		if !errors.Is(w.Err(), context.Canceled) {
			t.Fatalf("Err after cancel: %v", w.Err())
		}
	})
}

// A watch whose member stops ends with ErrWatchClosed; resumed with
// WatchAfter on the restarted member it delivers exactly the changes made
// meanwhile and after, old values included.
func TestWatchResumesAcrossMemberRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		member := c.Index(c.Followers()[0])
		writer := newConfig[Settings](t, c.WaitLeader())
		w, err := newConfig[Settings](t, c.Node(member)).Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev := recv(t, w); ev.Type != config.EventSynced {
			t.Fatalf("first event %+v", ev)
		}
		var got []int
		for i := range 3 {
			if _, err := writer.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: i}); err != nil {
				t.Fatal(err)
			}
			got = append(got, recv(t, w).New.RateLimit)
		}
		c.Stop(member)
		for range w.Events() {
		}
		if !errors.Is(w.Err(), kvstore.ErrWatchClosed) {
			t.Fatalf("Err after the member stopped: %v", w.Err())
		}
		resumeAt := w.Revision()
		for i := 3; i < 6; i++ {
			if _, err := writer.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: i}); err != nil {
				t.Fatal(err)
			}
		}
		restarted := c.Restart(member)
		w2, err := newConfig[Settings](t, restarted).WatchAfter(ctx, resumeAt)
		if err != nil {
			t.Fatal(err)
		}
		for i := 3; i < 8; i++ {
			if i >= 6 {
				if _, err := writer.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: i}); err != nil {
					t.Fatal(err)
				}
			}
			ev := recv(t, w2)
			if ev.Old.RateLimit != i-1 {
				t.Fatalf("resumed event %+v: old value %d, want %d", ev, ev.Old.RateLimit, i-1)
			}
			got = append(got, ev.New.RateLimit)
		}
		if fmt.Sprint(got) != fmt.Sprint([]int{0, 1, 2, 3, 4, 5, 6, 7}) {
			t.Fatalf("values seen across the restart: %v", got)
		}
	})
}

// WatchAfter a compacted revision ends at once with ErrCompacted; a
// negative revision is refused.
func TestWatchAfterCompacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		node := c.WaitLeader()
		cfg := newConfig[Settings](t, node)
		var last config.Meta
		for i := range 3 {
			m, err := cfg.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: i})
			if err != nil {
				t.Fatal(err)
			}
			last = m
		}
		if _, err := node.Compact(ctx, last.Revision); err != nil {
			t.Fatal(err)
		}
		w, err := cfg.WatchAfter(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		for range w.Events() {
		}
		if !errors.Is(w.Err(), kvstore.ErrCompacted) {
			t.Fatalf("Err %v", w.Err())
		}
		if _, err := cfg.WatchAfter(ctx, -1); !errors.Is(err, kvstore.ErrNegativeWatchRevision) {
			t.Fatalf("negative revision: %v", err)
		}
	})
}
