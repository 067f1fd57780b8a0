package mvcc_test

// A randomized model-based test: random ops run against the store and
// against a tiny reference model that keeps a full copy of the key space at
// every revision, and every answer is compared.

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

type modelEvent struct {
	typ  mvcc.EventType
	kv   mvcc.KeyValue
	prev *mvcc.KeyValue
}

type model struct {
	states     []map[string]mvcc.KeyValue // index = revision; 0 unused
	events     [][]modelEvent             // index = revision
	compactRev int64                      // -1: never
}

func newModel() *model {
	return &model{states: []map[string]mvcc.KeyValue{nil, {}}, events: [][]modelEvent{nil, nil}, compactRev: -1}
}

func (m *model) rev() int64 { return int64(len(m.states) - 1) }

func (m *model) current() map[string]mvcc.KeyValue { return m.states[m.rev()] }

// write applies a list of puts and deletes as one revision.
type modelWrite struct {
	put      bool
	key, end string
	value    string
}

func inRange(k, key, end string) bool {
	switch {
	case end == "":
		return k == key
	case end == "\x00":
		return k >= key
	}
	return k >= key && k < end
}

func (m *model) apply(ws []modelWrite) {
	next := maps.Clone(m.current())
	rev := m.rev() + 1
	var evs []modelEvent
	for _, w := range ws {
		if w.put {
			kv := mvcc.KeyValue{Key: []byte(w.key), Value: []byte(w.value), CreateRevision: rev, ModRevision: rev, Version: 1}
			var prev *mvcc.KeyValue
			if old, ok := next[w.key]; ok {
				kv.CreateRevision, kv.Version = old.CreateRevision, old.Version+1
				prev = &old
			}
			next[w.key] = kv
			evs = append(evs, modelEvent{mvcc.EventPut, kv, prev})
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(next)) {
			if inRange(k, w.key, w.end) {
				old := next[k]
				delete(next, k)
				evs = append(evs, modelEvent{mvcc.EventDelete, mvcc.KeyValue{Key: []byte(k), ModRevision: rev}, &old})
			}
		}
	}
	if len(evs) == 0 {
		return
	}
	m.states = append(m.states, next)
	m.events = append(m.events, evs)
}

func (m *model) readRev(rev int64) (int64, error) {
	switch {
	case rev <= 0:
		return m.rev(), nil
	case rev > m.rev():
		return 0, mvcc.ErrFutureRevision
	case rev < m.compactRev:
		return 0, mvcc.ErrCompacted
	}
	return rev, nil
}

func (m *model) rangeKeys(r *mvcc.RangeRequest) (*mvcc.RangeResult, error) {
	rev, err := m.readRev(r.Revision)
	if err != nil {
		return nil, err
	}
	res := &mvcc.RangeResult{Revision: m.rev()}
	state := m.states[rev]
	var kvs []mvcc.KeyValue
	for _, k := range slices.Sorted(maps.Keys(state)) {
		if len(r.End) > 0 && string(r.End) != "\x00" && string(r.End) <= string(r.Key) {
			break
		}
		if !inRange(k, string(r.Key), string(r.End)) {
			continue
		}
		res.Count++
		kv := state[k]
		if (r.MinModRevision > 0 && kv.ModRevision < r.MinModRevision) || (r.MaxModRevision > 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinCreateRevision > 0 && kv.CreateRevision < r.MinCreateRevision) || (r.MaxCreateRevision > 0 && kv.CreateRevision > r.MaxCreateRevision) {
			continue
		}
		kvs = append(kvs, kv)
	}
	if r.CountOnly {
		return res, nil
	}
	field := func(kv mvcc.KeyValue) []byte {
		switch r.SortTarget {
		case mvcc.SortByVersion:
			return fmt.Appendf(nil, "%020d", kv.Version)
		case mvcc.SortByCreateRevision:
			return fmt.Appendf(nil, "%020d", kv.CreateRevision)
		case mvcc.SortByModRevision:
			return fmt.Appendf(nil, "%020d", kv.ModRevision)
		case mvcc.SortByValue:
			return kv.Value
		}
		return kv.Key
	}
	desc := r.SortOrder == mvcc.SortDescend
	sort.SliceStable(kvs, func(i, j int) bool {
		c := bytes.Compare(field(kvs[i]), field(kvs[j]))
		if desc {
			return c > 0
		}
		return c < 0
	})
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, res.More = kvs[:r.Limit], true
	}
	if r.KeysOnly {
		for i := range kvs {
			kvs[i].Value = nil
		}
	}
	res.KVs = kvs
	return res, nil
}

func (m *model) compare(key string, target mvcc.CompareTarget, result mvcc.CompareResult, value string, number int64) bool {
	kv, ok := m.current()[key]
	if !ok && target == mvcc.CompareValue {
		return false
	}
	var c int
	switch target {
	case mvcc.CompareValue:
		c = bytes.Compare(kv.Value, []byte(value))
	case mvcc.CompareVersion:
		c = cmpInt(kv.Version, number)
	case mvcc.CompareMod:
		c = cmpInt(kv.ModRevision, number)
	case mvcc.CompareCreate:
		c = cmpInt(kv.CreateRevision, number)
	}
	switch result {
	case mvcc.CompareEqual:
		return c == 0
	case mvcc.CompareGreater:
		return c > 0
	case mvcc.CompareLess:
		return c < 0
	}
	return c != 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func duplicateWrites(ws []modelWrite) bool {
	for i, a := range ws {
		for j, o := range ws {
			if i != j && a.put && (o.put && a.key == o.key || !o.put && inRange(a.key, o.key, o.end)) {
				return true
			}
		}
	}
	return false
}

func (m *model) history(from int64) ([]modelEvent, error) {
	if from = max(from, 1); from < m.compactRev {
		return nil, mvcc.ErrCompacted
	}
	var out []modelEvent
	for rev := max(from, 1); rev <= m.rev(); rev++ {
		for _, ev := range m.events[rev] {
			if rev == m.compactRev {
				ev.prev = nil // rule 21
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// modelRun drives one random run of n ops.
type modelRun struct {
	t   *testing.T
	rng *rand.Rand
	s   *mvcc.Store
	m   *model
	log []string
}

var modelKeys = []string{"a", "b", "b/1", "b/2", "c", "d", "e", "f"}

func (r *modelRun) key() string { return modelKeys[r.rng.IntN(len(modelKeys))] }

func (r *modelRun) end(key string) string {
	switch r.rng.IntN(4) {
	case 0:
		return ""
	case 1:
		return "\x00"
	default:
		return r.key()
	}
}

func (r *modelRun) value() string { return fmt.Sprint(r.rng.IntN(20)) }

func (r *modelRun) fail(format string, args ...any) {
	r.t.Helper()
	tail := r.log[max(0, len(r.log)-8):]
	r.t.Fatalf("%s\nlast ops:\n%s", fmt.Sprintf(format, args...), fmt.Sprint(tail))
}

func (r *modelRun) sameErr(op string, got, want error) bool {
	r.t.Helper()
	if (got == nil) != (want == nil) || (want != nil && !errors.Is(got, want)) {
		r.fail("%s: error %v, model says %v", op, got, want)
	}
	return want != nil
}

func (r *modelRun) write(ws []modelWrite) {
	before := r.s.Revision()
	var ops []mvcc.Op
	for _, w := range ws {
		if w.put {
			ops = append(ops, mvcc.Op{Put: &mvcc.PutRequest{Key: []byte(w.key), Value: []byte(w.value)}})
		} else {
			ops = append(ops, mvcc.Op{Delete: &mvcc.DeleteRequest{Key: []byte(w.key), End: []byte(w.end)}})
		}
	}
	var err error
	if len(ws) == 1 && r.rng.IntN(2) == 0 {
		if ws[0].put {
			_, _, err = r.s.Put(ops[0].Put)
		} else {
			_, _, err = r.s.DeleteRange(ops[0].Delete)
		}
	} else {
		_, _, err = r.s.Txn(&mvcc.TxnRequest{Then: ops})
	}
	var want error
	if duplicateWrites(ws) {
		want = mvcc.ErrDuplicateKey
	}
	if r.sameErr(fmt.Sprint("write ", ws), err, want) {
		return
	}
	r.m.apply(ws)
	if r.s.Revision() != r.m.rev() {
		r.fail("write %v: revision %d, model %d (before %d)", ws, r.s.Revision(), r.m.rev(), before)
	}
}

func (r *modelRun) step() {
	switch op := r.rng.IntN(100); {
	case op < 30:
		r.log = append(r.log, "put")
		r.write([]modelWrite{{put: true, key: r.key(), value: r.value()}})
	case op < 38:
		k := r.key()
		r.log = append(r.log, "delete")
		r.write([]modelWrite{{key: k, end: r.end(k)}})
	case op < 48:
		var ws []modelWrite
		for range 1 + r.rng.IntN(3) {
			if r.rng.IntN(3) == 0 {
				k := r.key()
				ws = append(ws, modelWrite{key: k, end: r.end(k)})
			} else {
				ws = append(ws, modelWrite{put: true, key: r.key(), value: r.value()})
			}
		}
		r.log = append(r.log, "txn writes")
		r.write(ws)
	case op < 58:
		r.cas()
	case op < 85:
		r.read()
	case op < 90:
		r.compact()
	case op < 96:
		r.checkHistory()
	default:
		r.restore()
	}
	if got, want := r.s.LiveKeys(), len(r.m.current()); got != want {
		r.fail("%d live keys, model %d", got, want)
	}
}

func (r *modelRun) cas() {
	k := r.key()
	target := []mvcc.CompareTarget{mvcc.CompareValue, mvcc.CompareVersion, mvcc.CompareMod, mvcc.CompareCreate}[r.rng.IntN(4)]
	result := mvcc.CompareResult(r.rng.IntN(4))
	value, number := r.value(), int64(r.rng.IntN(int(r.m.rev())+2))
	then := modelWrite{put: true, key: k, value: r.value()}
	els := modelWrite{key: r.key()}
	r.log = append(r.log, fmt.Sprintf("cas %s %d %d", k, target, result))
	res, _, err := r.s.Txn(&mvcc.TxnRequest{
		Compares: []mvcc.Compare{{Key: []byte(k), Target: target, Result: result, Value: []byte(value), Number: number}},
		Then:     []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte(then.key), Value: []byte(then.value)}}},
		Else:     []mvcc.Op{{Delete: &mvcc.DeleteRequest{Key: []byte(els.key)}}},
	})
	if err != nil {
		r.fail("cas: %v", err)
	}
	want := r.m.compare(k, target, result, value, number)
	if res.Succeeded != want {
		r.fail("cas on %s: succeeded %v, model %v", k, res.Succeeded, want)
	}
	if want {
		r.m.apply([]modelWrite{then})
	} else {
		r.m.apply([]modelWrite{els})
	}
	if res.Revision != r.m.rev() {
		r.fail("cas revision %d, model %d", res.Revision, r.m.rev())
	}
}

func (r *modelRun) read() {
	k := r.key()
	req := mvcc.RangeRequest{Key: []byte(k), End: []byte(r.end(k))}
	if r.rng.IntN(4) == 0 {
		req.Key, req.End = []byte("\x00"), []byte("\x00")
	}
	switch r.rng.IntN(4) {
	case 0:
		req.Revision = r.m.rev() - int64(r.rng.IntN(int(r.m.rev())+1)) + 1 // up to current+1
	case 1:
		req.Revision = -int64(r.rng.IntN(3))
	}
	if r.rng.IntN(3) == 0 {
		req.Limit = int64(r.rng.IntN(4))
	}
	if r.rng.IntN(3) == 0 {
		req.SortTarget = mvcc.SortTarget(r.rng.IntN(5))
		req.SortOrder = mvcc.SortOrder(r.rng.IntN(3))
	}
	if r.rng.IntN(4) == 0 {
		bound := int64(r.rng.IntN(int(r.m.rev()) + 1))
		switch r.rng.IntN(4) {
		case 0:
			req.MinModRevision = bound
		case 1:
			req.MaxModRevision = bound
		case 2:
			req.MinCreateRevision = bound
		default:
			req.MaxCreateRevision = bound
		}
	}
	req.KeysOnly = r.rng.IntN(6) == 0
	req.CountOnly = r.rng.IntN(8) == 0
	r.log = append(r.log, fmt.Sprintf("range %+v", req))
	var got *mvcc.RangeResult
	var err error
	if pick := r.rng.IntN(4); pick < 2 {
		var tr *mvcc.TxnResult
		txn := &mvcc.TxnRequest{Then: []mvcc.Op{{Range: &req}}}
		if pick == 0 {
			tr, _, err = r.s.Txn(txn)
		} else {
			tr, err = r.s.ReadTxn(txn)
		}
		if err == nil {
			got = tr.Results[0].Range
		}
	} else {
		got, err = r.s.Range(&req)
	}
	want, werr := r.m.rangeKeys(&req)
	if r.sameErr("range", err, werr) {
		return
	}
	if len(got.KVs) == 0 {
		got.KVs = nil
	}
	if !reflect.DeepEqual(got, want) {
		r.fail("range %+v:\n got %+v\nwant %+v", req, got, want)
	}
}

func (r *modelRun) compact() {
	lo := max(r.m.compactRev, 0)
	rev := lo + int64(r.rng.IntN(int(r.m.rev()-lo)+2)) // may be current+1
	if r.rng.IntN(4) == 0 {
		rev = lo // at the compact revision
	}
	r.log = append(r.log, fmt.Sprint("compact ", rev))
	done, err := r.s.Compact(rev)
	var want error
	switch {
	case rev > r.m.rev():
		want = mvcc.ErrFutureRevision
	case rev <= r.m.compactRev:
		want = mvcc.ErrCompacted
	}
	if r.sameErr("compact", err, want) {
		return
	}
	r.m.compactRev = rev
	if r.rng.IntN(2) == 0 {
		<-done
	}
}

func (r *modelRun) checkHistory() {
	from := r.m.compactRev + int64(r.rng.IntN(4)) - 1
	k, end := "\x00", "\x00"
	if r.rng.IntN(2) == 0 {
		k = r.key()
		end = r.end(k)
	}
	r.log = append(r.log, fmt.Sprint("history from ", from))
	got, err := r.s.History(mvcc.HistoryRequest{Key: []byte(k), End: []byte(end), From: from})
	all, werr := r.m.history(from)
	if r.sameErr("history", err, werr) {
		return
	}
	var want []modelEvent
	for _, ev := range all {
		if inRange(string(ev.kv.Key), k, end) {
			want = append(want, ev)
		}
	}
	if len(got.Events) != len(want) {
		r.fail("history from %d of [%q,%q): %d events, model %d", from, k, end, len(got.Events), len(want))
	}
	for i, ev := range got.Events {
		w := want[i]
		if ev.Type != w.typ || !reflect.DeepEqual(ev.KV, w.kv) || !reflect.DeepEqual(ev.PrevKV, w.prev) {
			r.fail("history event %d: got %v %+v prev %+v, model %v %+v prev %+v", i, ev.Type, ev.KV, ev.PrevKV, w.typ, w.kv, w.prev)
		}
	}
}

// restore round-trips the store through a snapshot into a fresh store and
// carries on with that one.
func (r *modelRun) restore() {
	r.log = append(r.log, "snapshot+restore")
	var buf bytes.Buffer
	if _, err := r.s.Snapshot().WriteTo(&buf); err != nil {
		r.fail("snapshot: %v", err)
	}
	fresh := mvcc.New(mvcc.Config{})
	r.t.Cleanup(func() { fresh.Close() })
	if err := fresh.Restore(&buf); err != nil {
		r.fail("restore: %v", err)
	}
	h1, err1 := r.s.Hash(0)
	h2, err2 := fresh.Hash(0)
	if err1 != nil || err2 != nil || h1 != h2 {
		r.fail("hash after restore: %x %v vs %x %v", h1, err1, h2, err2)
	}
	r.s.Close()
	r.s = fresh
}

func TestModelRandomOps(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 4
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := mvcc.New(mvcc.Config{})
			t.Cleanup(func() { s.Close() })
			r := &modelRun{t: t, rng: rand.New(rand.NewPCG(uint64(seed), 7)), s: s, m: newModel()}
			for range 1500 {
				r.step()
			}
			r.checkHistory()
		})
	}
}
