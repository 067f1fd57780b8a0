package storage

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
)

// TestMemLogStoreAgainstMap drives memLogStore with raft's own patterns
// (appends, a conflicting suffix replaced, a prefix compacted, everything
// cleared) and compares every index with a map model.
func TestMemLogStoreAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := &memLogStore{}
	model := map[uint64]uint64{} // index -> term
	var first, last uint64       // 0, 0 while empty
	next := uint64(1)            // where an append to the empty log starts
	check := func(step int) {
		t.Helper()
		f, _ := s.FirstIndex()
		l, _ := s.LastIndex()
		if f != first || l != last {
			t.Fatalf("step %d: first/last %d/%d, want %d/%d", step, f, l, first, last)
		}
		for i := max(first, 4) - 3; i <= max(last, next)+3; i++ {
			var log raft.Log
			err := s.GetLog(i, &log)
			term, ok := model[i]
			switch {
			case ok && (err != nil || log.Index != i || log.Term != term):
				t.Fatalf("step %d: GetLog(%d) = %+v %v, want term %d", step, i, log, err, term)
			case !ok && !errors.Is(err, raft.ErrLogNotFound):
				t.Fatalf("step %d: GetLog(%d) = %+v %v, want ErrLogNotFound", step, i, log, err)
			}
		}
	}
	for step := range 5000 {
		switch op := rng.IntN(10); {
		case op < 6: // append a batch, maybe replacing a suffix
			from := last + 1
			switch {
			case last == 0:
				from = next
			case last > first && rng.IntN(4) == 0:
				from = first + 1 + rng.Uint64N(last-first)
			}
			var batch []*raft.Log
			for i := range uint64(1 + rng.IntN(20)) {
				batch = append(batch, &raft.Log{Index: from + i, Term: uint64(step)})
			}
			if err := s.StoreLogs(batch); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			for i := from; i <= last; i++ {
				delete(model, i)
			}
			for _, l := range batch {
				model[l.Index] = l.Term
			}
			if last == 0 {
				first = from
			}
			last = batch[len(batch)-1].Index
		case op < 9 && last > first: // compact a prefix
			upTo := first + rng.Uint64N(last-first)
			if err := s.DeleteRange(first, upTo); err != nil {
				t.Fatal(err)
			}
			for i := first; i <= upTo; i++ {
				delete(model, i)
			}
			first = upTo + 1
		case op == 9 && last > 0: // clear, as after installing a snapshot
			if err := s.DeleteRange(first, last); err != nil {
				t.Fatal(err)
			}
			clear(model)
			next = last + 100 // the next append starts past the snapshot
			first, last = 0, 0
		}
		check(step)
	}
}

func TestMemLogStoreRefusesHoles(t *testing.T) {
	s := &memLogStore{}
	if err := s.StoreLogs([]*raft.Log{{Index: 5}, {Index: 6}, {Index: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 3}); err == nil {
		t.Fatal("an append before the first entry was accepted")
	}
	if err := s.DeleteRange(6, 6); err == nil {
		t.Fatal("deleting from the middle was accepted")
	}
	if l, _ := s.LastIndex(); l != 7 {
		t.Fatalf("refused changes changed the log: last %d", l)
	}
	// An append past a gap (after a snapshot) starts the log afresh.
	if err := s.StoreLog(&raft.Log{Index: 20}); err != nil {
		t.Fatal(err)
	}
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	var log raft.Log
	if f != 20 || l != 20 || !errors.Is(s.GetLog(7, &log), raft.ErrLogNotFound) {
		t.Fatalf("after an append past a gap: first %d last %d", f, l)
	}
}
