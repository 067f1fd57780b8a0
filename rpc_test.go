package kvstore

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/mvcc"
)

// Every error a leader may answer a call with crosses the network matchable
// with errors.Is, a read round's "not ready" included (a follower retries
// on it).
func TestWireErrorsRoundTrip(t *testing.T) {
	for _, sentinel := range wireErrors[1:] {
		wrapped := fmt.Errorf("context: %w", sentinel)
		got := fromWireError(toWireError(wrapped))
		if !errors.Is(got, sentinel) || got.Error() != wrapped.Error() && !errors.Is(sentinel, ErrNotLeader) {
			t.Errorf("%v came back as %v", wrapped, got)
		}
	}
	nl := fromWireError(toWireError(&NotLeaderError{LeaderID: "n2", LeaderAddress: "a2"}))
	var typed *NotLeaderError
	if !errors.As(nl, &typed) || typed.LeaderID != "n2" || typed.LeaderAddress != "a2" {
		t.Errorf("not-leader came back as %#v", nl)
	}
	if !retryableRead(fromWireError(toWireError(errLeaderNotReady))) {
		t.Error("a remote not-ready round is not retried")
	}
}

// TestApplyResultCrossesWhole: every field of an applyResult but the two
// that stay behind (Events, local; Err, which travels as the reply's
// error) has a counterpart in wire.Result and comes back from a reply,
// encoded and decoded, as it was sent.
func TestApplyResultCrossesWhole(t *testing.T) {
	stay := map[string]bool{"Events": true, "Err": true}
	wt := reflect.TypeFor[wire.Result]()
	for _, f := range reflect.VisibleFields(reflect.TypeFor[applyResult]()) {
		if _, ok := wt.FieldByName(f.Name); !ok && !stay[f.Name] {
			t.Errorf("applyResult.%s has no counterpart in wire.Result", f.Name)
		}
	}
	sent := &applyResult{
		Revision: 9, LeaseTTL: 30,
		Put:    &mvcc.PutResult{Revision: 9, PrevKV: &mvcc.KeyValue{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 3, Version: 2, Lease: 4}},
		Delete: &mvcc.DeleteResult{Revision: 9, Deleted: 1, PrevKVs: []mvcc.KeyValue{{Key: []byte("d"), Version: 1}}},
		Txn:    &mvcc.TxnResult{Revision: 9, Succeeded: true, Results: []mvcc.OpResult{{Range: &mvcc.RangeResult{Count: 1, Revision: 9}}}},
	}
	data, err := wire.EncodeRPC(&wire.Reply{Result: resultToWire(sent)})
	if err != nil {
		t.Fatal(err)
	}
	var reply wire.Reply
	if err := wire.DecodeRPC(data, &reply); err != nil {
		t.Fatal(err)
	}
	if got := resultFromWire(reply.Result); !reflect.DeepEqual(got, sent) {
		t.Fatalf("result after a reply:\n got %+v\nwant %+v", got, sent)
	}
}
