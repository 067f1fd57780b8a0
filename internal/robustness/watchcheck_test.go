package robustness

import (
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// A history of four revisions: put k0=a, put k1=b, a txn putting k0=c and
// deleting k1, delete k0.
func sampleEvents() map[int64][]WatchEvent {
	a, b, c := kvAt("a", 2, 2, 1), kvAt("b", 3, 3, 1), kvAt("c", 4, 2, 2)
	return map[int64][]WatchEvent{
		2: {{Revision: 2, Key: 0, KV: a}},
		3: {{Revision: 3, Key: 1, KV: b}},
		4: {{Revision: 4, Key: 0, KV: c, PrevKV: &a}, {Revision: 4, Key: 1, Delete: true, KV: KV{Mod: 4}, PrevKV: &b}},
		5: {{Revision: 5, Key: 0, Delete: true, KV: KV{Mod: 5}, PrevKV: &c}},
	}
}

// segment delivers revisions in responses, one response per inner list.
func segment(node int, start int64, responses ...[]int64) WatchSegment {
	events := sampleEvents()
	seg := WatchSegment{Node: node, Start: start}
	for _, revs := range responses {
		var r WatchResponse
		for _, rev := range revs {
			r.Events = append(r.Events, events[rev]...)
			r.Revision = rev
		}
		seg.Responses = append(seg.Responses, r)
	}
	return seg
}

func progress(seg WatchSegment, rev int64) WatchSegment {
	seg.Responses = append(seg.Responses, WatchResponse{Revision: rev, Progress: true})
	return seg
}

func checkSegments(segs ...WatchSegment) []error {
	ref, errs := BuildReference(segs, 5, nil)
	last := map[int]WatchSegment{}
	for _, seg := range segs {
		last[seg.Node] = seg
	}
	var lastSegs []WatchSegment
	for _, seg := range last {
		lastSegs = append(lastSegs, seg)
	}
	_, more := CheckWatches(segs, lastSegs, ref)
	return append(errs, more...)
}

func wantError(t *testing.T, name string, errs []error, substr string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), substr) {
			return
		}
	}
	t.Errorf("%s: errors %v, want one containing %q", name, errs, substr)
}

func TestCheckWatches(t *testing.T) {
	good := segment(0, 1, []int64{2, 3}, []int64{4}, []int64{5})
	if errs := checkSegments(good, segment(1, 1, []int64{2}, []int64{3, 4, 5})); len(errs) > 0 {
		t.Fatalf("a correct history fails: %v", errs)
	}
	// A resumed watch: one segment to 3, the next from 4.
	if errs := checkSegments(good, segment(1, 1, []int64{2, 3}), segment(1, 4, []int64{4, 5})); len(errs) > 0 {
		t.Fatalf("a correctly resumed watch fails: %v", errs)
	}
	wantError(t, "gap", checkSegments(good, segment(1, 1, []int64{2}, []int64{4, 5})), "delivered revisions")
	wantError(t, "duplicate", checkSegments(good, segment(1, 1, []int64{2, 3}, []int64{3, 4, 5})), "delivered after")
	wantError(t, "out of order", checkSegments(good, segment(1, 1, []int64{3}, []int64{2, 4, 5})), "delivered after")
	wantError(t, "resumed with a gap", checkSegments(good, segment(1, 1, []int64{2}), segment(1, 3, []int64{4, 5})), "delivered revisions")
	wantError(t, "bookmark too early", checkSegments(good, progress(segment(1, 1, []int64{2}), 3)), "bookmark 3")
	wantError(t, "stopped short", checkSegments(good, segment(1, 1, []int64{2, 3})), "ended the run at revision 3")

	split := segment(1, 1, []int64{2, 3}, nil, []int64{5})
	events := sampleEvents()
	split.Responses[1] = WatchResponse{Revision: 4, Events: events[4][:1]}
	split.Responses = slices.Insert(split.Responses, 2, WatchResponse{Revision: 4, Events: events[4][1:]})
	wantError(t, "revision split across responses", checkSegments(good, split), "revision 4")

	bad := segment(1, 1, []int64{2, 3, 4, 5})
	wrong := kvAt("z", 2, 2, 1)
	bad.Responses[0].Events[2].PrevKV = &wrong
	wantError(t, "wrong prev-kv", checkSegments(bad), "wrong PrevKV")
	wantError(t, "watches disagree", checkSegments(good, bad), "disagree")
}

func TestCheckWrites(t *testing.T) {
	ref, _ := BuildReference([]WatchSegment{segment(0, 1, []int64{2, 3, 4, 5})}, 5, nil)
	ops := []porcupine.Operation{
		op(0, Request{Kind: OpPut, Key: 0, Value: "a"}, 1, Response{Revision: 2}, 2),
		op(0, Request{Kind: OpPut, Key: 1, Value: "b"}, 3, Response{Revision: 3}, 4),
		op(0, Request{Kind: OpMulti, Key: 0, Key2: 0, Key3: 1, Value: "c"}, 5, Response{Revision: 4, Succeeded: true}, 6),
	}
	if errs := CheckWrites(ops, ref); len(errs) > 0 {
		t.Fatalf("correct writes fail: %v", errs)
	}
	wantError(t, "value never written", CheckWrites(ops[:2], ref), "no client wrote")
	moved := slices.Clone(ops)
	moved[1].Output = Response{Revision: 5}
	wantError(t, "write at another revision", CheckWrites(moved, ref), "acknowledged at revision 5")
}

func TestCheckSerializable(t *testing.T) {
	ref, _ := BuildReference([]WatchSegment{segment(0, 1, []int64{2, 3, 4, 5})}, 5, nil)
	read := func(rev, call int64, kvs map[int]KV) SerializableRead {
		r := SerializableRead{Revision: rev, From: 0, End: 2, Call: call, Return: call + 1}
		for k, kv := range kvs {
			r.KVs[k] = kv
		}
		return r
	}
	r3 := read(3, 1, map[int]KV{0: kvAt("a", 2, 2, 1), 1: kvAt("b", 3, 3, 1)})
	r4 := read(4, 3, map[int]KV{0: kvAt("c", 4, 2, 2)})
	if _, _, errs := CheckSerializable([]SerializableRead{r3, r4}, ref.States); len(errs) > 0 {
		t.Fatalf("correct reads fail: %v", errs)
	}
	stale := read(3, 5, map[int]KV{0: kvAt("a", 2, 2, 1), 1: kvAt("b", 3, 3, 1)})
	_, _, errs := CheckSerializable([]SerializableRead{r4, stale}, ref.States)
	wantError(t, "going back", errs, "went back")
	r4.Applied, stale.Applied = 10, 9 // the state machine was restored to an older snapshot
	_, rollbacks, errs := CheckSerializable([]SerializableRead{r4, stale}, ref.States)
	if len(errs) > 0 {
		t.Errorf("a rollback counted as an error: %v", errs)
	}
	wantError(t, "rollback", rollbacks, "went back")
	wrong := read(4, 1, map[int]KV{0: kvAt("a", 2, 2, 1)})
	_, _, errs = CheckSerializable([]SerializableRead{wrong}, ref.States)
	wantError(t, "a state that never was", errs, "committed state")
}
