package robustness

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func op(client int, req Request, call int64, resp Response, ret int64) porcupine.Operation {
	if resp.Unknown {
		ret = unknownReturn
	}
	return porcupine.Operation{ClientId: client, Input: req, Call: call, Output: resp, Return: ret}
}

func kvAt(value string, rev, create, version int64) KV {
	return KV{Value: value, Mod: rev, Create: create, Version: version}
}

func getResp(rev int64, kvs map[int]KV) Response {
	r := Response{Revision: rev}
	for k, kv := range kvs {
		r.KVs[k] = kv
	}
	return r
}

// The model accepts what a linearizable store may answer and rejects what
// it may not: the checks can fail.
func TestModel(t *testing.T) {
	put := Request{Kind: OpPut, Key: 0, Value: "a"}
	get := Request{Kind: OpGet, Key: 0, End: 1}
	after := getResp(2, map[int]KV{0: kvAt("a", 2, 2, 1)})
	before := getResp(1, nil)
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read after write", []porcupine.Operation{op(0, put, 1, Response{Revision: 2}, 2), op(1, get, 3, after, 4)}, porcupine.Ok},
		{"stale read after write", []porcupine.Operation{op(0, put, 1, Response{Revision: 2}, 2), op(1, get, 3, before, 4)}, porcupine.Illegal},
		{"concurrent read sees either", []porcupine.Operation{op(0, put, 1, Response{Revision: 2}, 4), op(1, get, 2, before, 3)}, porcupine.Ok},
		{"wrong revision", []porcupine.Operation{op(0, put, 1, Response{Revision: 3}, 2)}, porcupine.Illegal},
		{"value never written", []porcupine.Operation{op(1, get, 1, getResp(2, map[int]KV{0: kvAt("b", 2, 2, 1)}), 2)}, porcupine.Illegal},
		{"unknown write seen", []porcupine.Operation{op(0, put, 1, Response{Unknown: true}, 0), op(1, get, 3, after, 4)}, porcupine.Ok},
		{"unknown write not seen", []porcupine.Operation{op(0, put, 1, Response{Unknown: true}, 0), op(1, get, 3, before, 4)}, porcupine.Ok},
		{"unknown write seen then unseen", []porcupine.Operation{
			op(0, put, 1, Response{Unknown: true}, 0), op(1, get, 3, after, 4), op(1, get, 5, before, 6)}, porcupine.Illegal},
		{"put with a lease never granted", []porcupine.Operation{
			op(0, Request{Kind: OpPut, Key: 0, Value: "a", Lease: 1}, 1, Response{Revision: 2}, 2)}, porcupine.Illegal},
		{"lease keys go with the revoke", []porcupine.Operation{
			op(0, Request{Kind: OpGrant, Lease: 0}, 1, Response{Revision: 1}, 2),
			op(0, Request{Kind: OpPut, Key: 0, Value: "a", Lease: 1}, 3, Response{Revision: 2}, 4),
			op(0, Request{Kind: OpRevoke, Lease: 0}, 5, Response{Revision: 3}, 6),
			op(0, get, 7, getResp(3, nil), 8)}, porcupine.Ok},
		{"an expiry may happen after a clock jump", []porcupine.Operation{
			op(0, Request{Kind: OpGrant, Lease: 0}, 1, Response{Revision: 1}, 2),
			op(0, Request{Kind: OpPut, Key: 0, Value: "a", Lease: 1}, 3, Response{Revision: 2}, 4),
			op(1, Request{Kind: OpExpire, Lease: 0}, 5, Response{Unknown: true}, 0),
			op(0, get, 7, getResp(3, nil), 8)}, porcupine.Ok},
		{"but not before it", []porcupine.Operation{
			op(0, Request{Kind: OpGrant, Lease: 0}, 1, Response{Revision: 1}, 2),
			op(0, Request{Kind: OpPut, Key: 0, Value: "a", Lease: 1}, 3, Response{Revision: 2}, 4),
			op(0, get, 5, getResp(3, nil), 6),
			op(1, Request{Kind: OpExpire, Lease: 0}, 7, Response{Unknown: true}, 0)}, porcupine.Illegal},
		{"cas on a stale mod revision fails", []porcupine.Operation{
			op(0, put, 1, Response{Revision: 2}, 2),
			op(1, Request{Kind: OpCAS, Key: 0, Expect: 0, Value: "b"}, 3, Response{Revision: 3, Succeeded: true}, 4)}, porcupine.Illegal},
		{"compact ahead of the store", []porcupine.Operation{
			op(0, Request{Kind: OpCompact, Revision: 5}, 1, Response{Revision: 1}, 2)}, porcupine.Illegal},
	}
	for _, tc := range cases {
		if got := porcupine.CheckOperations(Model, tc.ops); (got && tc.want != porcupine.Ok) || (!got && tc.want == porcupine.Ok) {
			t.Errorf("%s: linearizable %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPatch(t *testing.T) {
	ref := &Reference{
		Events: map[int64][]WatchEvent{2: {{Revision: 2, Key: 1, KV: kvAt("b", 2, 2, 1)}}},
		Final:  2,
		States: make([]State, 3),
	}
	ops := []porcupine.Operation{
		op(0, Request{Kind: OpPut, Key: 0, Value: "a"}, 1, Response{Unknown: true}, 0),
		op(1, Request{Kind: OpMulti, Key: 2, Key2: 3, Key3: 1, Value: "b"}, 1, Response{Unknown: true}, 0),
		op(2, Request{Kind: OpDelete, Key: 0}, 1, Response{Unknown: true}, 0),
	}
	got := Patch(ops, ref)
	if len(got) != 2 {
		t.Fatalf("patched %d operations, want 2 (the uncommitted put dropped): %+v", len(got), got)
	}
	if r := got[0].Output.(Response); r.Unknown || r.Revision != 2 || r.Succeeded {
		t.Errorf("the committed multi patched to %+v, want revision 2 in the else branch", r)
	}
	if r := got[1].Output.(Response); !r.Unknown {
		t.Errorf("the delete was patched to %+v; a delete has no value to find", r)
	}
	ref.States = ref.States[:2] // revision 2 missing from the replay
	if got := Patch(ops, ref); len(got) != 3 {
		t.Errorf("patched an incomplete reference")
	}
}
