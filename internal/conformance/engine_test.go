package conformance_test

// TestEngineConformance replays etcd's recorded answers against the storage
// engine alone: mvcc for keys, lease.Table for leases, and watches served
// from mvcc history. It pins the engine's semantics before any raft is
// involved; the replicated node's own replay goes through its public API.

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kvstore/kvstore/internal/conformance"
	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
)

func TestEngineConformance(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "seed-*.json.gz"))
	if len(paths) != 40 {
		t.Fatalf("%d golden records, want 40", len(paths))
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			rec, err := conformance.ReadRecord(path)
			if err != nil {
				t.Fatal(err)
			}
			fresh := func() (conformance.Store, error) { return newEngine(), nil }
			div, err := conformance.Replay(context.Background(), fresh, rec)
			if err != nil {
				t.Fatal(err)
			}
			if div != nil {
				t.Fatal(div)
			}
		})
	}
}

type engine struct {
	kv      *mvcc.Store
	leases  *lease.Table
	watches []*engineWatch
}

func newEngine() *engine {
	e := &engine{leases: lease.NewTable(2)}
	e.kv = mvcc.New(mvcc.Config{CheckLease: func(id int64) error {
		if !e.leases.Exists(lease.ID(id)) {
			return lease.ErrLeaseNotFound
		}
		return nil
	}})
	return e
}

// track keeps the lease table's key attachments in step with the writes.
func (e *engine) track(events []mvcc.Event) {
	for _, ev := range events {
		id := lease.NoLease
		if ev.Type == mvcc.EventPut {
			id = lease.ID(ev.KV.Lease)
		}
		if err := e.leases.SetKeyLease(string(ev.KV.Key), id); err != nil {
			panic(err)
		}
	}
}

func classify(err error) error {
	for _, m := range []struct {
		err   error
		class conformance.ErrorClass
	}{
		{mvcc.ErrEmptyKey, conformance.ErrEmptyKey},
		{mvcc.ErrKeyNotFound, conformance.ErrKeyNotFound},
		{mvcc.ErrValueProvided, conformance.ErrValueProvided},
		{mvcc.ErrLeaseProvided, conformance.ErrLeaseProvided},
		{mvcc.ErrTooManyOps, conformance.ErrTooManyOps},
		{mvcc.ErrDuplicateKey, conformance.ErrDuplicateKey},
		{mvcc.ErrCompacted, conformance.ErrCompacted},
		{mvcc.ErrFutureRevision, conformance.ErrFutureRev},
		{mvcc.ErrLeaseNotFound, conformance.ErrLeaseNotFound},
		{lease.ErrLeaseNotFound, conformance.ErrLeaseNotFound},
		{lease.ErrLeaseExists, conformance.ErrLeaseExists},
		{lease.ErrTTLTooLarge, conformance.ErrLeaseTTLTooLarge},
		{mvcc.ErrInvalidSortOption, conformance.ErrInvalidSortOption},
	} {
		if errors.Is(err, m.err) {
			return m.class
		}
	}
	return err
}

func toKV(kv *mvcc.KeyValue) *conformance.KeyValue {
	if kv == nil {
		return nil
	}
	return &conformance.KeyValue{Key: conformance.Bytes(kv.Key), Value: conformance.Bytes(kv.Value),
		CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
}

func toKVs(kvs []mvcc.KeyValue) []conformance.KeyValue {
	var out []conformance.KeyValue
	for i := range kvs {
		out = append(out, *toKV(&kvs[i]))
	}
	return out
}

func b(s conformance.Bytes) []byte { return []byte(s) }

func putReq(r *conformance.PutRequest) *mvcc.PutRequest {
	return &mvcc.PutRequest{Key: b(r.Key), Value: b(r.Value), Lease: r.Lease, PrevKV: r.PrevKV, IgnoreValue: r.IgnoreValue, IgnoreLease: r.IgnoreLease}
}

func rangeReq(r *conformance.RangeRequest) *mvcc.RangeRequest {
	orders := map[conformance.SortOrder]mvcc.SortOrder{conformance.SortNone: mvcc.SortNone, conformance.SortAscend: mvcc.SortAscend, conformance.SortDescend: mvcc.SortDescend}
	targets := map[conformance.SortTarget]mvcc.SortTarget{conformance.SortByKey: mvcc.SortByKey, conformance.SortByVersion: mvcc.SortByVersion,
		conformance.SortByCreate: mvcc.SortByCreateRevision, conformance.SortByMod: mvcc.SortByModRevision, conformance.SortByValue: mvcc.SortByValue}
	order, ok := orders[r.SortOrder]
	if !ok {
		order = 255
	}
	target, ok := targets[r.SortTarget]
	if !ok {
		target = 255
	}
	return &mvcc.RangeRequest{Key: b(r.Key), End: b(r.RangeEnd), Revision: r.Revision, Limit: r.Limit, SortOrder: order, SortTarget: target,
		KeysOnly: r.KeysOnly, CountOnly: r.CountOnly, MinModRevision: r.MinModRevision, MaxModRevision: r.MaxModRevision,
		MinCreateRevision: r.MinCreateRevision, MaxCreateRevision: r.MaxCreateRevision}
}

func rangeResp(r *mvcc.RangeResult) *conformance.RangeResponse {
	return &conformance.RangeResponse{Revision: r.Revision, Kvs: toKVs(r.KVs), Count: r.Count, More: r.More}
}

func deleteResp(r *mvcc.DeleteResult) *conformance.DeleteResponse {
	return &conformance.DeleteResponse{Revision: r.Revision, Deleted: r.Deleted, PrevKVs: toKVs(r.PrevKVs)}
}

func txnReq(r *conformance.TxnRequest) *mvcc.TxnRequest {
	targets := map[conformance.CompareTarget]mvcc.CompareTarget{conformance.CompareValue: mvcc.CompareValue, conformance.CompareVersion: mvcc.CompareVersion,
		conformance.CompareCreate: mvcc.CompareCreate, conformance.CompareMod: mvcc.CompareMod, conformance.CompareLease: mvcc.CompareLease}
	results := map[conformance.CompareResult]mvcc.CompareResult{conformance.CompareEqual: mvcc.CompareEqual, conformance.CompareNotEqual: mvcc.CompareNotEqual,
		conformance.CompareLess: mvcc.CompareLess, conformance.CompareGreater: mvcc.CompareGreater}
	out := &mvcc.TxnRequest{}
	for _, c := range r.Compare {
		out.Compares = append(out.Compares, mvcc.Compare{Key: b(c.Key), End: b(c.RangeEnd), Target: targets[c.Target], Result: results[c.Result], Value: b(c.Value), Number: c.Number})
	}
	ops := func(in []conformance.TxnOp) []mvcc.Op {
		var list []mvcc.Op
		for _, op := range in {
			switch {
			case op.Put != nil:
				list = append(list, mvcc.Op{Put: putReq(op.Put)})
			case op.Range != nil:
				list = append(list, mvcc.Op{Range: rangeReq(op.Range)})
			case op.Delete != nil:
				list = append(list, mvcc.Op{Delete: &mvcc.DeleteRequest{Key: b(op.Delete.Key), End: b(op.Delete.RangeEnd), PrevKV: op.Delete.PrevKV}})
			case op.Txn != nil:
				list = append(list, mvcc.Op{Txn: txnReq(op.Txn)})
			}
		}
		return list
	}
	out.Then, out.Else = ops(r.Then), ops(r.Else)
	return out
}

func txnResp(r *mvcc.TxnResult) *conformance.TxnResponse {
	out := &conformance.TxnResponse{Revision: r.Revision, Succeeded: r.Succeeded}
	for _, res := range r.Results {
		var op conformance.ResponseOp
		switch {
		case res.Put != nil:
			op.Put = &conformance.PutResponse{Revision: res.Put.Revision, PrevKV: toKV(res.Put.PrevKV)}
		case res.Range != nil:
			op.Range = rangeResp(res.Range)
		case res.Delete != nil:
			op.Delete = deleteResp(res.Delete)
		case res.Txn != nil:
			op.Txn = txnResp(res.Txn)
		}
		out.Responses = append(out.Responses, op)
	}
	return out
}

func (e *engine) Put(_ context.Context, r *conformance.PutRequest) (*conformance.PutResponse, error) {
	res, events, err := e.kv.Put(putReq(r))
	if err != nil {
		return nil, classify(err)
	}
	e.track(events)
	return &conformance.PutResponse{Revision: res.Revision, PrevKV: toKV(res.PrevKV)}, nil
}

func (e *engine) Range(_ context.Context, r *conformance.RangeRequest) (*conformance.RangeResponse, error) {
	res, err := e.kv.Range(rangeReq(r))
	if err != nil {
		return nil, classify(err)
	}
	return rangeResp(res), nil
}

func (e *engine) Delete(_ context.Context, r *conformance.DeleteRequest) (*conformance.DeleteResponse, error) {
	res, events, err := e.kv.DeleteRange(&mvcc.DeleteRequest{Key: b(r.Key), End: b(r.RangeEnd), PrevKV: r.PrevKV})
	if err != nil {
		return nil, classify(err)
	}
	e.track(events)
	return deleteResp(res), nil
}

func (e *engine) Txn(_ context.Context, r *conformance.TxnRequest) (*conformance.TxnResponse, error) {
	res, events, err := e.kv.Txn(txnReq(r))
	if err != nil {
		return nil, classify(err)
	}
	e.track(events)
	return txnResp(res), nil
}

func (e *engine) Compact(_ context.Context, r *conformance.CompactRequest) (*conformance.CompactResponse, error) {
	for _, w := range e.watches {
		if err := w.catchUp(e.kv.Revision()); err != nil {
			return nil, err
		}
	}
	done, err := e.kv.Compact(r.Revision)
	if err != nil {
		return nil, classify(err)
	}
	if r.Physical {
		<-done
	}
	return &conformance.CompactResponse{Revision: e.kv.Revision()}, nil
}

func (e *engine) LeaseGrant(_ context.Context, r *conformance.LeaseGrantRequest) (*conformance.LeaseGrantResponse, error) {
	ttl, err := e.leases.Grant(lease.ID(r.ID), r.TTL)
	if err != nil {
		return nil, classify(err)
	}
	return &conformance.LeaseGrantResponse{Revision: e.kv.Revision(), ID: r.ID, TTL: ttl}, nil
}

func (e *engine) LeaseRevoke(_ context.Context, r *conformance.LeaseRevokeRequest) (*conformance.LeaseRevokeResponse, error) {
	keys, err := e.leases.Revoke(lease.ID(r.ID))
	if err != nil {
		return nil, classify(err)
	}
	var raw [][]byte
	for _, k := range keys {
		raw = append(raw, []byte(k))
	}
	rev, events, err := e.kv.DeleteKeys(raw)
	if err != nil {
		return nil, err
	}
	e.track(events)
	return &conformance.LeaseRevokeResponse{Revision: rev}, nil
}

func (e *engine) LeaseTimeToLive(_ context.Context, r *conformance.LeaseTimeToLiveRequest) (*conformance.LeaseTimeToLiveResponse, error) {
	res := &conformance.LeaseTimeToLiveResponse{Revision: e.kv.Revision(), ID: r.ID}
	l, ok := e.leases.Lookup(lease.ID(r.ID))
	if !ok {
		res.Missing = true
		return res, nil
	}
	res.GrantedTTL = l.TTL
	if r.Keys {
		for _, k := range e.leases.Keys(l.ID) {
			res.Keys = append(res.Keys, conformance.Bytes(k))
		}
	}
	return res, nil
}

func (e *engine) LeaseLeases(context.Context, *conformance.LeaseLeasesRequest) (*conformance.LeaseLeasesResponse, error) {
	res := &conformance.LeaseLeasesResponse{Revision: e.kv.Revision()}
	for _, id := range e.leases.IDs() {
		res.IDs = append(res.IDs, int64(id))
	}
	return res, nil
}

// engineWatch serves one watch from mvcc history: events are collected up
// to a revision whenever the runner asks (Drain) or a compaction is about to
// remove history (Compact).
type engineWatch struct {
	kv       *mvcc.Store
	req      conformance.WatchRequest
	key, end []byte
	next     int64
	outcome  conformance.WatchOutcome
	canceled bool
}

func (e *engine) Watch(_ context.Context, r *conformance.WatchRequest) (*conformance.WatchResponse, conformance.Watcher, error) {
	if r.StartRevision < 0 {
		return nil, nil, conformance.ErrCompacted // rule 19, checked first
	}
	key, end := b(r.Key), b(r.RangeEnd)
	if len(end) > 0 && !(len(end) == 1 && end[0] == 0) && string(end) <= string(key) {
		return nil, nil, conformance.ErrWatchEmptyRange // rule 20
	}
	if len(key) == 0 {
		key = []byte{0}
	}
	w := &engineWatch{kv: e.kv, req: *r, key: key, end: end, next: r.StartRevision}
	if w.next == 0 {
		w.next = e.kv.Revision() + 1
	}
	if compacted := e.kv.CompactRevision(); w.next < compacted {
		w.canceled, w.outcome.CompactRevision = true, compacted // rule 19
	}
	e.watches = append(e.watches, w)
	return &conformance.WatchResponse{Revision: e.kv.Revision()}, w, nil
}

func (w *engineWatch) catchUp(rev int64) error {
	if w.canceled || w.next > rev {
		return nil
	}
	res, err := w.kv.History(mvcc.HistoryRequest{Key: w.key, End: w.end, From: w.next, To: rev})
	if err != nil {
		return err
	}
	for _, ev := range res.Events {
		out := conformance.Event{Type: ev.Type.String(), KeyValue: *toKV(&ev.KV)}
		if (ev.Type == mvcc.EventPut && w.req.NoPut) || (ev.Type == mvcc.EventDelete && w.req.NoDelete) {
			continue
		}
		if w.req.PrevKV {
			out.PrevKV = toKV(ev.PrevKV)
		}
		w.outcome.Events = append(w.outcome.Events, out)
	}
	w.next = res.Next
	return nil
}

func (w *engineWatch) Drain(_ context.Context, rev int64) (*conformance.WatchOutcome, error) {
	if err := w.catchUp(rev); err != nil {
		return nil, err
	}
	out := w.outcome
	out.Events = slices.Clone(out.Events)
	return &out, nil
}

func (e *engine) Revision(context.Context) (int64, error) { return e.kv.Revision(), nil }

func (e *engine) Close() error { return e.kv.Close() }
