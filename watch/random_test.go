package watch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// TestRandomized drives a real store (a leader) and a follower store that
// sometimes lags and installs a snapshot, with random puts, deletes, txns,
// compactions and progress requests, while many watches with random ranges,
// start revisions, filters and prev-kv read at random speeds (stalling for
// a while, or being cancelled and resumed). Every stream is then checked
// against the leader's full write history for all six guarantees (see
// env.check): ordered, unique, reliable, atomic, bookmarkable, and
// resumable (a cancelled watch resumed from its last revision + 1 must
// continue exactly).
func TestRandomized(t *testing.T) {
	for seed := range 4 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomRun(t, uint64(seed), false) })
		})
	}
}

// TestRandomizedBatched is TestRandomized with the hub fed as a batching
// state machine feeds it: writes and compactions gathered in a Batch that
// is reported (NotifyBatch) at random points, so watches start, resume and
// catch up while the store is ahead of what the hub has delivered.
func TestRandomizedBatched(t *testing.T) {
	for seed := range 4 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomRun(t, uint64(100+seed), true) })
		})
	}
}

// beats is a broadcast the driver advances; stalled consumers wait for it.
type beats struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *beats) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *beats) advance() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

type randomWatch struct {
	sp     spec
	cancel context.CancelFunc
	done   chan []watch.Response
	rs     []watch.Response
}

func randomRun(t *testing.T, seed uint64, batched bool) {
	rng := rand.New(rand.NewPCG(seed, 77))
	cfg := watch.Config{
		BufferSize:       []int{2, 4, 16}[rng.IntN(3)],
		MaxBatchEvents:   []int{1, 3, 50}[rng.IntN(3)],
		ProgressInterval: 3 * time.Millisecond,
	}
	e := newFollowerEnv(t, cfg)
	if batched {
		e.batch = &watch.Batch{}
	}
	keys := []string{"a", "a/1", "a/2", "a/3", "b", "b/1", "b/2", "c", "c/x", "d"}
	key := func() string { return keys[rng.IntN(len(keys))] }
	randomRange := func() (string, string) {
		switch rng.IntN(5) {
		case 0:
			return key(), ""
		case 1:
			p := []string{"a/", "b/", "c"}[rng.IntN(3)]
			return p, string(mvcc.PrefixEnd([]byte(p)))
		case 2:
			lo, hi := key(), key()
			if lo >= hi {
				lo, hi = hi, lo+"\x00"
			}
			return lo, hi
		case 3:
			return key(), "\x00"
		}
		return "", "\x00"
	}
	b := &beats{ch: make(chan struct{})}
	// finish is closed when the driver lets every consumer run free; a
	// stalled consumer waits on it with the beat, so that one that read
	// the beat channel just after the last advance does not wait forever.
	finish := make(chan struct{})
	finished := func() bool {
		select {
		case <-finish:
			return true
		default:
			return false
		}
	}

	var watches []*randomWatch
	startWatch := func(r watch.Request, start int64) {
		ctx, cancel := context.WithCancel(t.Context())
		ch := e.watch(ctx, r)
		w := &randomWatch{sp: specOf(r, start), cancel: cancel, done: make(chan []watch.Response, 1)}
		stallEvery := 1 + rng.IntN(20)
		stallBeats := rng.IntN(8)
		go func() {
			var rs []watch.Response
			for r := range ch {
				rs = append(rs, r)
				if len(rs)%stallEvery == 0 {
					for i := 0; i < stallBeats && !finished() && ctx.Err() == nil; i++ {
						select {
						case <-b.wait():
						case <-ctx.Done():
						case <-finish:
						}
					}
				}
			}
			w.done <- rs
		}()
		watches = append(watches, w)
	}
	newWatch := func() {
		k, end := randomRange()
		r := watch.Request{Key: []byte(k), End: []byte(end), PrevKV: rng.IntN(2) == 0,
			FilterPut: rng.IntN(6) == 0, FilterDelete: rng.IntN(6) == 0,
			ProgressNotify: rng.IntN(3) == 0, CreatedNotify: rng.IntN(3) == 0}
		now := e.hubRevision()
		start := now + 1
		switch rng.IntN(10) {
		case 0, 1, 2:
			r.StartRevision = max(1, now-rng.Int64N(200)) // maybe compacted (rule 19)
			start = r.StartRevision
		case 3:
			r.StartRevision = now + 1 + rng.Int64N(20) // future
			start = r.StartRevision
		}
		startWatch(r, start)
	}
	// resume restarts a random watch from the revision after its last
	// response, as a client would; the old stream is checked on its own.
	resume := func() {
		w := watches[rng.IntN(len(watches))]
		if w.cancel == nil {
			return
		}
		w.cancel()
		w.cancel = nil
		w.rs = <-w.done
		_, covered := e.check(t, w.sp, w.rs, true)
		if len(w.rs) > 0 && w.rs[len(w.rs)-1].Canceled {
			return // compacted: nothing to resume
		}
		r := watch.Request{Key: []byte(w.sp.key), End: []byte(w.sp.end), StartRevision: covered + 1,
			PrevKV: w.sp.prevKV, FilterPut: w.sp.filterPut, FilterDelete: w.sp.filterDelete}
		if r.StartRevision < 1 {
			r.StartRevision = 1
		}
		startWatch(r, r.StartRevision)
	}

	lagUntil := -1
	for step := range 2500 {
		switch n := rng.IntN(100); {
		case n < 45:
			e.put(key(), fmt.Sprint(step))
		case n < 52:
			e.del(key(), "")
		case n < 56:
			lo, hi := randomRange()
			if hi == "" || lo == "" {
				lo, hi = "a", "b"
			}
			e.del(lo, hi)
		case n < 70:
			// Distinct keys: puts then single-key deletes (no duplicates, rule 15).
			perm := rng.Perm(len(keys))
			var ops []mvcc.Op
			for i := range 1 + rng.IntN(4) {
				if rng.IntN(3) == 0 {
					ops = append(ops, opDel(keys[perm[i]], ""))
				} else {
					ops = append(ops, opPut(keys[perm[i]], fmt.Sprint(step)))
				}
			}
			e.txn(ops...)
		case n < 72:
			// Mostly well behind the head, so that only slow watches meet it.
			target := e.s.Revision() - 100 - rng.Int64N(100)
			if rng.IntN(8) == 0 {
				target = e.s.Revision() - rng.Int64N(10)
			}
			if target > e.s.CompactRevision() {
				e.compact(target)
			}
		case n < 74:
			e.h.RequestProgress()
		case n < 84:
			newWatch()
		case n < 86 && len(watches) > 0:
			resume()
		case n < 87 && lagUntil < step:
			e.lagging = true
			lagUntil = step + 5 + rng.IntN(60)
		case n < 92:
			time.Sleep(time.Millisecond) // progress ticks; consumers run
		default:
			synctest.Wait()
		}
		if batched && rng.IntN(4) == 0 {
			e.flush()
		}
		if step == lagUntil {
			e.installSnapshot()
		}
		if step%10 == 0 {
			b.advance()
		}
	}
	e.flush()
	if e.lagging {
		e.installSnapshot()
	}
	// Let every consumer run free and every watch catch up, then close.
	close(finish)
	b.advance()
	synctest.Wait()
	e.h.Close()

	ends := map[streamEnd]int{}
	for _, w := range watches {
		if w.cancel == nil {
			ends[endClosed]++
			continue // checked when it was resumed
		}
		w.rs = <-w.done
		end, _ := e.check(t, w.sp, w.rs, true)
		ends[end]++
		if end == endHubClosed {
			// It was caught up when the hub closed: it has everything.
			if got, want := len(eventsOf(w.rs)), len(e.expected(w.sp, e.s.Revision())); got != want {
				t.Fatalf("watch %q-%q from %d: %d events at Close, want %d", w.sp.key, w.sp.end, w.sp.start, got, want)
			}
		}
	}
	t.Logf("config %+v, revision %d, compactions %d, watches by end: closed by hub %d, compacted %d, cancelled %d",
		cfg, e.s.Revision(), len(e.compactions), ends[endHubClosed], ends[endCompacted], ends[endClosed])
	if ends[endHubClosed] == 0 || ends[endCompacted] == 0 {
		t.Fatalf("the run did not exercise both endings: %v", ends)
	}
}
