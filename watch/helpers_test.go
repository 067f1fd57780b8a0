package watch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// env is a store and a hub fed the way the state machine feeds it: every
// write goes to the store, then its events to Notify. It also keeps the
// full write history, the oracle the tests check streams against.
//
// With a follower (newFollowerEnv), s plays the leader and the hub watches
// f, a second store that applies the same writes unless it is lagging; a
// lagging follower catches up by installing a snapshot of s.
type env struct {
	t      testing.TB
	s      *mvcc.Store
	f      *mvcc.Store // nil: the hub watches s
	h      *watch.Hub
	events []mvcc.Event // every event applied, in order
	// compactions are the revisions compacted at, in order.
	compactions []int64
	lagging     bool
	// batch, when set, gathers notifications as a batching state machine
	// does (Hub.NotifyBatch); flush reports them.
	batch *watch.Batch
}

// flush reports the batched notifications, if batching.
func (e *env) flush() {
	if e.batch != nil {
		e.h.NotifyBatch(e.batch)
		e.batch.Reset()
	}
}

func newEnv(t testing.TB, cfg watch.Config) *env {
	t.Helper()
	s := mvcc.New(mvcc.Config{})
	h := watch.NewHub(s, cfg)
	t.Cleanup(func() {
		h.Close()
		s.Close()
	})
	return &env{t: t, s: s, h: h}
}

func newFollowerEnv(t testing.TB, cfg watch.Config) *env {
	t.Helper()
	s, f := mvcc.New(mvcc.Config{}), mvcc.New(mvcc.Config{})
	h := watch.NewHub(f, cfg)
	t.Cleanup(func() {
		h.Close()
		s.Close()
		f.Close()
	})
	return &env{t: t, s: s, f: f, h: h}
}

// write applies op to the leader (recording its events), then, unless the
// follower lags, to the store the hub watches, and notifies the hub.
func (e *env) write(op func(s *mvcc.Store) (int64, []mvcc.Event, error)) int64 {
	e.t.Helper()
	rev, evs, err := op(e.s)
	if err != nil {
		e.t.Fatalf("write: %v", err)
	}
	e.events = append(e.events, evs...)
	if e.f != nil {
		if e.lagging {
			return rev
		}
		frev, fevs, err := op(e.f)
		if err != nil || frev != rev || len(fevs) != len(evs) {
			e.t.Fatalf("follower diverged: revision %d vs %d, %v", frev, rev, err)
		}
		evs = fevs
	}
	if e.batch != nil {
		e.batch.Add(rev, evs)
		return rev
	}
	e.h.Notify(rev, evs)
	return rev
}

func (e *env) put(key, value string) int64 {
	e.t.Helper()
	return e.write(func(s *mvcc.Store) (int64, []mvcc.Event, error) {
		res, evs, err := s.Put(&mvcc.PutRequest{Key: []byte(key), Value: []byte(value)})
		if err != nil {
			return 0, nil, err
		}
		return res.Revision, evs, nil
	})
}

func (e *env) del(key, end string) int64 {
	e.t.Helper()
	return e.write(func(s *mvcc.Store) (int64, []mvcc.Event, error) {
		res, evs, err := s.DeleteRange(&mvcc.DeleteRequest{Key: []byte(key), End: []byte(end)})
		if err != nil {
			return 0, nil, err
		}
		return res.Revision, evs, nil
	})
}

func (e *env) txn(ops ...mvcc.Op) int64 {
	e.t.Helper()
	return e.write(func(s *mvcc.Store) (int64, []mvcc.Event, error) {
		res, evs, err := s.Txn(&mvcc.TxnRequest{Then: ops})
		if err != nil {
			return 0, nil, err
		}
		return res.Revision, evs, nil
	})
}

func (e *env) compact(rev int64) {
	e.t.Helper()
	if _, err := e.s.Compact(rev); err != nil {
		e.t.Fatalf("compact %d: %v", rev, err)
	}
	e.compactions = append(e.compactions, rev)
	if e.f != nil {
		if e.lagging {
			return
		}
		if _, err := e.f.Compact(rev); err != nil {
			e.t.Fatalf("follower compact %d: %v", rev, err)
		}
	}
	if e.batch != nil {
		e.batch.Compacted(rev)
		return
	}
	e.h.Compacted(rev)
}

// installSnapshot replaces the follower's store with a snapshot of the
// leader's, as raft does for a follower too far behind, and tells the hub.
func (e *env) installSnapshot() {
	e.t.Helper()
	e.flush() // a state machine reports its applied batch before a restore
	var buf bytes.Buffer
	if _, err := e.s.Snapshot().WriteTo(&buf); err != nil {
		e.t.Fatal(err)
	}
	if err := e.f.Restore(&buf); err != nil {
		e.t.Fatal(err)
	}
	e.lagging = false
	e.h.Restored()
}

// hubRevision is the revision of the store the hub watches.
func (e *env) hubRevision() int64 {
	if e.f != nil {
		return e.f.Revision()
	}
	return e.s.Revision()
}

func (e *env) watch(ctx context.Context, r watch.Request) <-chan watch.Response {
	e.t.Helper()
	ch, err := e.h.Watch(ctx, r)
	if err != nil {
		e.t.Fatalf("watch %+v: %v", r, err)
	}
	return ch
}

func opPut(key, value string) mvcc.Op {
	return mvcc.Op{Put: &mvcc.PutRequest{Key: []byte(key), Value: []byte(value)}}
}

func opDel(key, end string) mvcc.Op {
	return mvcc.Op{Delete: &mvcc.DeleteRequest{Key: []byte(key), End: []byte(end)}}
}

// available returns the responses ch holds right now, without blocking,
// and whether ch is closed. In a synctest bubble, call synctest.Wait first.
func available(ch <-chan watch.Response) (out []watch.Response, closed bool) {
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return out, true
			}
			out = append(out, r)
		default:
			return out, false
		}
	}
}

// collect reads ch until it is closed.
func collect(t testing.TB, ch <-chan watch.Response) []watch.Response {
	t.Helper()
	var out []watch.Response
	timeout := time.After(20 * time.Second) // a guard, not a wait: virtual in synctest
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, r)
		case <-timeout:
			t.Fatalf("channel not closed; got %d responses", len(out))
		}
	}
}

// eventsOf concatenates the events of responses.
func eventsOf(rs []watch.Response) []mvcc.Event {
	var out []mvcc.Event
	for _, r := range rs {
		out = append(out, r.Events...)
	}
	return out
}

// spec is what a stream is checked against: a watch request with its start
// revision resolved.
type spec struct {
	key, end                        string
	start                           int64
	prevKV, filterPut, filterDelete bool
}

func specOf(r watch.Request, start int64) spec {
	key := string(r.Key)
	if key == "" {
		key = "\x00"
	}
	return spec{key: key, end: string(r.End), start: start, prevKV: r.PrevKV, filterPut: r.FilterPut, filterDelete: r.FilterDelete}
}

func (sp spec) contains(k string) bool {
	switch {
	case sp.end == "":
		return k == sp.key
	case sp.end == "\x00":
		return k >= sp.key
	}
	return k >= sp.key && k < sp.end
}

// expected returns the events the oracle says sp must deliver, with revision
// at most upTo, PrevKV as the write returned it.
func (e *env) expected(sp spec, upTo int64) []mvcc.Event {
	var out []mvcc.Event
	for _, ev := range e.events {
		rev := ev.KV.ModRevision
		if rev < sp.start || rev > upTo || !sp.contains(string(ev.KV.Key)) {
			continue
		}
		if (ev.Type == mvcc.EventPut && sp.filterPut) || (ev.Type == mvcc.EventDelete && sp.filterDelete) {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// streamEnd is how a checked stream ended.
type streamEnd int

const (
	endOpen      streamEnd = iota // not closed (yet)
	endClosed                     // closed with no final response (context ended)
	endCompacted                  // Canceled + ErrCompacted
	endHubClosed                  // Canceled + ErrClosed
)

// check verifies etcd's guarantees for one stream against the oracle:
// ordered, unique, reliable (exactly the expected events up to the last
// bookmark), atomic (a revision's events in one response), bookmarkable
// (every non-Created response's Revision covers all events at or below
// it), prev-kv as asked (rule 21: none only at a compact revision), and a
// justified ending. It returns how the stream ended and the last revision
// the stream covers.
func (e *env) check(t testing.TB, sp spec, rs []watch.Response, closed bool) (streamEnd, int64) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("watch %q-%q from %d: %s", sp.key, sp.end, sp.start, fmt.Sprintf(format, args...))
	}
	compacted := map[int64]bool{}
	for _, c := range e.compactions {
		compacted[c] = true
	}
	all := e.expected(sp, 1<<62)
	perRev := map[int64]int{}
	for _, ev := range all {
		perRev[ev.KV.ModRevision]++
	}
	upTo := func(rev int64) int { // expected events at or below rev
		return sort.Search(len(all), func(i int) bool { return all[i].KV.ModRevision > rev })
	}
	var got []mvcc.Event
	covered := sp.start - 1 // the bookmark: every event <= covered delivered
	last := mvcc.Revision{Main: -1}
	end := endOpen
	for i, r := range rs {
		if end != endOpen {
			fail("response %d after the last one", i)
		}
		if r.Created {
			if i != 0 || len(r.Events) != 0 {
				fail("created response %d: %+v", i, r)
			}
			continue
		}
		inResp := map[int64]int{}
		for _, ev := range r.Events {
			rev := mvcc.Revision{Main: ev.KV.ModRevision, Sub: ev.Sub}
			if !last.Less(rev) {
				fail("event %d.%d after %d.%d: not ordered or not unique", rev.Main, rev.Sub, last.Main, last.Sub)
			}
			last = rev
			if rev.Main > r.Revision {
				fail("event at %d in a response at revision %d", rev.Main, r.Revision)
			}
			inResp[rev.Main]++
			got = append(got, ev)
		}
		for rev, n := range inResp {
			if n != perRev[rev] {
				fail("revision %d split: %d of its %d events in one response", rev, n, perRev[rev])
			}
		}
		// A future watch may get progress below its start: not a step back.
		covered = max(covered, r.Revision)
		// Bookmark: everything at or below covered is delivered by now.
		if want := upTo(covered); len(got) != want {
			fail("response %d at revision %d: %d events delivered, %d expected", i, covered, len(got), want)
		}
		if r.Canceled {
			switch {
			case errors.Is(r.Err, mvcc.ErrCompacted):
				end = endCompacted
				if !compacted[r.CompactRevision] || covered+1 >= r.CompactRevision {
					fail("cancelled with compact revision %d after delivering up to %d (compactions %v)", r.CompactRevision, covered, e.compactions)
				}
			case errors.Is(r.Err, watch.ErrClosed):
				end = endHubClosed
			default:
				fail("cancelled with %v", r.Err)
			}
		} else if r.Err != nil || r.CompactRevision != 0 {
			fail("response %d not cancelled but %+v", i, r)
		}
	}
	if closed && end == endOpen {
		end = endClosed
	}
	if !closed && end != endOpen {
		fail("channel not closed after the last response")
	}
	want := all[:upTo(covered)]
	if len(got) != len(want) {
		fail("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Sub != w.Sub || !reflect.DeepEqual(g.KV, w.KV) {
			fail("event %d: %v %q@%d, want %v %q@%d", i, g.Type, g.KV.Key, g.KV.ModRevision, w.Type, w.KV.Key, w.KV.ModRevision)
		}
		switch {
		case !sp.prevKV:
			if g.PrevKV != nil {
				fail("event %d has a prev kv nobody asked for", i)
			}
		case g.PrevKV == nil:
			if w.PrevKV != nil && !compacted[w.KV.ModRevision] {
				fail("event %d at %d lacks its prev kv (rule 21)", i, w.KV.ModRevision)
			}
		case w.PrevKV == nil || !reflect.DeepEqual(*g.PrevKV, *w.PrevKV):
			fail("event %d: prev kv %+v, want %+v (rule 21)", i, g.PrevKV, w.PrevKV)
		}
	}
	return end, covered
}

// noHubGoroutines fails if a goroutine running the hub's code survives, for
// tests outside a synctest bubble (inside one, synctest itself reports
// leaked goroutines).
func noHubGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			if strings.Contains(string(g), "kvstore/watch.") {
				leaked = append(leaked, string(g))
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d hub goroutines remain:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		runtime.Gosched()
	}
}
