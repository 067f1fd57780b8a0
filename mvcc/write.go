package mvcc

import (
	"bytes"
	"slices"
)

// writer applies the changes of one write transaction. It is used under the
// store's write lock, after every check has passed: nothing it does can fail,
// so a transaction never needs undoing.
type writer struct {
	s *Store
	// main is the revision this transaction writes, one above the store's.
	main int64
	// sub counts the changes made so far.
	sub    int64
	events []Event
}

func (s *Store) newWriter() *writer {
	return &writer{s: s, main: s.rev + 1}
}

// current is the revision a read inside the transaction reports: the new
// revision once it has changed something (SEMANTICS.md rule 14).
func (w *writer) current() int64 {
	if w.sub > 0 {
		return w.main
	}
	return w.main - 1
}

// commit publishes the transaction's revision and returns its events. It
// is where the index gets back the memory the transaction's inserts left
// (tightener).
func (w *writer) commit() []Event {
	if w.sub > 0 {
		w.s.rev = w.main
		w.s.tight.maybeTighten(w.s.tree)
	}
	return w.events
}

func (w *writer) nextSub() int32 {
	sub := int32(w.sub)
	w.sub++
	return sub
}

func (w *writer) put(r *PutRequest) *PutResult {
	s := w.s
	it, ok := s.tree.Get(probe(r.Key))
	if !ok {
		it = keyItem{key: string(r.Key)}
		s.size += int64(len(r.Key)) + keyOverhead
		s.tight.noteInsert(it.key)
	}
	v := version{main: w.main, sub: w.nextSub(), lease: r.Lease}
	f := startFacts(&v)
	prev, hasPrev := it.latest()
	if !hasPrev {
		s.live++ // a new key, or a new generation of a deleted one
	} else {
		f = prev.next()
		if r.IgnoreLease {
			v.lease = prev.lease
		}
	}
	if r.IgnoreValue && hasPrev {
		v.val, v.vlen = prev.val, prev.vlen // immutable: shared, not copied
	} else if len(r.Value) > 0 {
		v.setValue(bytes.Clone(r.Value))
	}
	ev := Event{Type: EventPut, Sub: int64(v.sub)}
	res := &PutResult{Revision: w.main}
	if hasPrev {
		kv := it.kv(prev)
		ev.PrevKV = &kv
		if r.PrevKV {
			res.PrevKV = &kv
		}
	}
	it = it.withVersion(v, f)
	s.tree.Set(it)
	s.log.append(it.key, w.main)
	s.size += int64(len(v.value())) + versionOverhead
	ev.KV = it.kv(fullVersion{it.versions.last(), f})
	w.events = append(w.events, ev)
	return res
}

func (w *writer) deleteRange(r *DeleteRequest) *DeleteResult {
	s := w.s
	res := &DeleteResult{}
	kr := newKeyRange(r.Key, r.End)
	var doomed []keyItem
	s.scan(kr, func(it *keyItem) bool {
		if it.live() {
			doomed = append(doomed, *it)
		}
		return true
	})
	for _, it := range doomed {
		latest, _ := it.latest()
		prev := it.kv(latest)
		v := tombstoneAt(w.main, w.nextSub())
		it = it.withVersion(v, genFacts{})
		s.tree.Set(it)
		s.log.append(it.key, w.main)
		s.size += versionOverhead
		s.live--
		w.events = append(w.events, Event{
			Type:   EventDelete,
			KV:     KeyValue{Key: it.keyBytes(), ModRevision: w.main},
			PrevKV: &prev,
			Sub:    int64(v.sub),
		})
		if r.PrevKV {
			res.PrevKVs = append(res.PrevKVs, prev)
		}
	}
	res.Deleted = int64(len(doomed))
	res.Revision = w.current()
	return res
}

// scan calls fn for every item in kr, in key order, until fn returns false.
// fn must not modify the tree.
func (s *Store) scan(kr keyRange, fn func(it *keyItem) bool) {
	if kr.empty() {
		return
	}
	if kr.single {
		if it, ok := s.tree.Get(keyItem{key: kr.key}); ok {
			fn(&it)
		}
		return
	}
	s.tree.Ascend(keyItem{key: kr.key}, func(it keyItem) bool {
		if kr.beyond(it.key) {
			return false
		}
		return fn(&it)
	})
}

// DeleteKeys deletes the given keys as one write transaction, in key order,
// with no txn limits: it is how a lease revocation removes its keys. Keys
// that do not exist are skipped; if none exists the revision does not
// change. It returns the store's revision afterwards and the events.
func (s *Store) DeleteKeys(keys [][]byte) (int64, []Event, error) {
	sorted := slices.SortedFunc(slices.Values(keys), bytes.Compare)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil, ErrClosed
	}
	w := s.newWriter()
	for i, k := range sorted {
		if len(k) == 0 || (i > 0 && bytes.Equal(k, sorted[i-1])) {
			continue
		}
		w.deleteRange(&DeleteRequest{Key: k})
	}
	events := w.commit()
	return s.rev, events, nil
}
