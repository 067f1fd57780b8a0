package etcdapi_test

// TestConformanceGRPC replays etcd v3.7.3's recorded answers
// (internal/conformance) through clientv3 over gRPC to a follower of a
// 3-member cluster: every request crosses clientv3's encoding, etcdapi's
// translation and error mapping, the forwarding of writes to the leader
// and a linearizable read on the follower, and must come back as etcd
// answered it.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kvstore/kvstore/internal/conformance"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

func TestConformanceGRPC(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "internal", "conformance", "testdata", "seed-*.json.gz"))
	if len(paths) != 40 {
		t.Fatalf("%d golden records, want 40", len(paths))
	}
	if testing.Short() {
		paths = paths[:4]
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			rec, err := conformance.ReadRecord(path)
			if err != nil {
				t.Fatal(err)
			}
			fresh := func() (conformance.Store, error) {
				c := steadyCluster(t) // a spurious election would abort the replay
				return &grpcStore{cli: c.client(t, c.Index(c.Followers()[0]))}, nil
			}
			div, err := conformance.Replay(testContext(t), fresh, rec)
			if err != nil {
				t.Fatal(err)
			}
			if div != nil {
				t.Fatal(div)
			}
		})
	}
}

// grpcStore adapts a clientv3 client to conformance.Store.
type grpcStore struct {
	cli     *clientv3.Client
	watches []*grpcWatch
}

// grpcClasses pairs clientv3's errors with the conformance classes.
var grpcClasses = []struct {
	err   error
	class conformance.ErrorClass
}{
	{rpctypes.ErrEmptyKey, conformance.ErrEmptyKey},
	{rpctypes.ErrKeyNotFound, conformance.ErrKeyNotFound},
	{rpctypes.ErrValueProvided, conformance.ErrValueProvided},
	{rpctypes.ErrLeaseProvided, conformance.ErrLeaseProvided},
	{rpctypes.ErrTooManyOps, conformance.ErrTooManyOps},
	{rpctypes.ErrDuplicateKey, conformance.ErrDuplicateKey},
	{rpctypes.ErrCompacted, conformance.ErrCompacted},
	{rpctypes.ErrFutureRev, conformance.ErrFutureRev},
	{rpctypes.ErrLeaseNotFound, conformance.ErrLeaseNotFound},
	{rpctypes.ErrLeaseExist, conformance.ErrLeaseExists},
	{rpctypes.ErrLeaseTTLTooLarge, conformance.ErrLeaseTTLTooLarge},
	{rpctypes.ErrInvalidSortOption, conformance.ErrInvalidSortOption},
}

// grpcClassify returns the class of an error clientv3 returned, or the
// error itself (which aborts the replay).
func grpcClassify(err error) error {
	typed := rpctypes.Error(err)
	for _, m := range grpcClasses {
		if errors.Is(typed, m.err) {
			return m.class
		}
	}
	return err
}

func kv(in *mvccpb.KeyValue) *conformance.KeyValue {
	if in == nil {
		return nil
	}
	return &conformance.KeyValue{Key: conformance.Bytes(in.Key), Value: conformance.Bytes(in.Value),
		CreateRevision: in.CreateRevision, ModRevision: in.ModRevision, Version: in.Version, Lease: in.Lease}
}

func kvs(in []*mvccpb.KeyValue) []conformance.KeyValue {
	var out []conformance.KeyValue
	for _, x := range in {
		out = append(out, *kv(x))
	}
	return out
}

var sortOrders = map[conformance.SortOrder]clientv3.SortOrder{
	conformance.SortNone: clientv3.SortNone, conformance.SortAscend: clientv3.SortAscend, conformance.SortDescend: clientv3.SortDescend,
}

var sortTargets = map[conformance.SortTarget]clientv3.SortTarget{
	conformance.SortByKey: clientv3.SortByKey, conformance.SortByVersion: clientv3.SortByVersion, conformance.SortByCreate: clientv3.SortByCreateRevision,
	conformance.SortByMod: clientv3.SortByModRevision, conformance.SortByValue: clientv3.SortByValue,
}

func getOptions(r *conformance.RangeRequest) []clientv3.OpOption {
	var o []clientv3.OpOption
	if len(r.RangeEnd) > 0 {
		o = append(o, clientv3.WithRange(string(r.RangeEnd)))
	}
	if r.Revision != 0 {
		o = append(o, clientv3.WithRev(r.Revision))
	}
	if r.Limit != 0 {
		o = append(o, clientv3.WithLimit(r.Limit))
	}
	if r.SortOrder != conformance.SortNone || r.SortTarget != conformance.SortByKey {
		o = append(o, clientv3.WithSort(sortTargets[r.SortTarget], sortOrders[r.SortOrder]))
	}
	if r.KeysOnly {
		o = append(o, clientv3.WithKeysOnly())
	}
	if r.CountOnly {
		o = append(o, clientv3.WithCountOnly())
	}
	for _, f := range []struct {
		rev int64
		opt func(int64) clientv3.OpOption
	}{
		{r.MinModRevision, clientv3.WithMinModRev}, {r.MaxModRevision, clientv3.WithMaxModRev},
		{r.MinCreateRevision, clientv3.WithMinCreateRev}, {r.MaxCreateRevision, clientv3.WithMaxCreateRev},
	} {
		if f.rev != 0 {
			o = append(o, f.opt(f.rev))
		}
	}
	return o
}

func putOptions(r *conformance.PutRequest) []clientv3.OpOption {
	var o []clientv3.OpOption
	if r.Lease != 0 {
		o = append(o, clientv3.WithLease(clientv3.LeaseID(r.Lease)))
	}
	if r.PrevKV {
		o = append(o, clientv3.WithPrevKV())
	}
	if r.IgnoreValue {
		o = append(o, clientv3.WithIgnoreValue())
	}
	if r.IgnoreLease {
		o = append(o, clientv3.WithIgnoreLease())
	}
	return o
}

func deleteOptions(r *conformance.DeleteRequest) []clientv3.OpOption {
	var o []clientv3.OpOption
	if len(r.RangeEnd) > 0 {
		o = append(o, clientv3.WithRange(string(r.RangeEnd)))
	}
	if r.PrevKV {
		o = append(o, clientv3.WithPrevKV())
	}
	return o
}

func rangeResponse(r *pb.RangeResponse) *conformance.RangeResponse {
	return &conformance.RangeResponse{Revision: r.Header.Revision, Kvs: kvs(r.Kvs), Count: r.Count, More: r.More}
}

func (s *grpcStore) Put(ctx context.Context, r *conformance.PutRequest) (*conformance.PutResponse, error) {
	res, err := s.cli.Put(ctx, string(r.Key), string(r.Value), putOptions(r)...)
	if err != nil {
		return nil, grpcClassify(err)
	}
	return &conformance.PutResponse{Revision: res.Header.Revision, PrevKV: kv(res.PrevKv)}, nil
}

func (s *grpcStore) Range(ctx context.Context, r *conformance.RangeRequest) (*conformance.RangeResponse, error) {
	res, err := s.cli.Get(ctx, string(r.Key), getOptions(r)...)
	if err != nil {
		return nil, grpcClassify(err)
	}
	return rangeResponse((*pb.RangeResponse)(res)), nil
}

func (s *grpcStore) Delete(ctx context.Context, r *conformance.DeleteRequest) (*conformance.DeleteResponse, error) {
	res, err := s.cli.Delete(ctx, string(r.Key), deleteOptions(r)...)
	if err != nil {
		return nil, grpcClassify(err)
	}
	return &conformance.DeleteResponse{Revision: res.Header.Revision, Deleted: res.Deleted, PrevKVs: kvs(res.PrevKvs)}, nil
}

var compareOperators = map[conformance.CompareResult]string{
	conformance.CompareEqual: "=", conformance.CompareNotEqual: "!=", conformance.CompareLess: "<", conformance.CompareGreater: ">",
}

func txnParts(r *conformance.TxnRequest) (cmps []clientv3.Cmp, then, els []clientv3.Op) {
	for _, c := range r.Compare {
		key := string(c.Key)
		var target clientv3.Cmp
		var v any = c.Number
		switch c.Target {
		case conformance.CompareValue:
			target, v = clientv3.Value(key), string(c.Value)
		case conformance.CompareVersion:
			target = clientv3.Version(key)
		case conformance.CompareCreate:
			target = clientv3.CreateRevision(key)
		case conformance.CompareMod:
			target = clientv3.ModRevision(key)
		case conformance.CompareLease:
			target = clientv3.LeaseValue(key)
		}
		cmp := clientv3.Compare(target, compareOperators[c.Result], v)
		if len(c.RangeEnd) > 0 {
			cmp = cmp.WithRange(string(c.RangeEnd))
		}
		cmps = append(cmps, cmp)
	}
	ops := func(in []conformance.TxnOp) []clientv3.Op {
		var list []clientv3.Op
		for _, op := range in {
			switch {
			case op.Put != nil:
				list = append(list, clientv3.OpPut(string(op.Put.Key), string(op.Put.Value), putOptions(op.Put)...))
			case op.Range != nil:
				list = append(list, clientv3.OpGet(string(op.Range.Key), getOptions(op.Range)...))
			case op.Delete != nil:
				list = append(list, clientv3.OpDelete(string(op.Delete.Key), deleteOptions(op.Delete)...))
			case op.Txn != nil:
				c, t, e := txnParts(op.Txn)
				list = append(list, clientv3.OpTxn(c, t, e))
			}
		}
		return list
	}
	return cmps, ops(r.Then), ops(r.Else)
}

func txnResponse(r *pb.TxnResponse) *conformance.TxnResponse {
	out := &conformance.TxnResponse{Revision: r.Header.Revision, Succeeded: r.Succeeded}
	for _, res := range r.Responses {
		var op conformance.ResponseOp
		switch {
		case res.GetResponsePut() != nil:
			p := res.GetResponsePut()
			op.Put = &conformance.PutResponse{Revision: p.Header.Revision, PrevKV: kv(p.PrevKv)}
		case res.GetResponseRange() != nil:
			op.Range = rangeResponse(res.GetResponseRange())
		case res.GetResponseDeleteRange() != nil:
			d := res.GetResponseDeleteRange()
			op.Delete = &conformance.DeleteResponse{Revision: d.Header.Revision, Deleted: d.Deleted, PrevKVs: kvs(d.PrevKvs)}
		case res.GetResponseTxn() != nil:
			op.Txn = txnResponse(res.GetResponseTxn())
		}
		out.Responses = append(out.Responses, op)
	}
	return out
}

func (s *grpcStore) Txn(ctx context.Context, r *conformance.TxnRequest) (*conformance.TxnResponse, error) {
	cmps, then, els := txnParts(r)
	res, err := s.cli.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return nil, grpcClassify(err)
	}
	return txnResponse((*pb.TxnResponse)(res)), nil
}

// Compact first brings every watch up to date, as the contract asks.
func (s *grpcStore) Compact(ctx context.Context, r *conformance.CompactRequest) (*conformance.CompactResponse, error) {
	rev, err := s.Revision(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range s.watches {
		if _, err := w.Drain(ctx, rev); err != nil {
			return nil, err
		}
	}
	var opts []clientv3.CompactOption
	if r.Physical {
		opts = append(opts, clientv3.WithCompactPhysical())
	}
	res, err := s.cli.Compact(ctx, r.Revision, opts...)
	if err != nil {
		return nil, grpcClassify(err)
	}
	return &conformance.CompactResponse{Revision: res.Header.Revision}, nil
}

// LeaseGrant asks for the script's lease ID, which clientv3's Grant does
// not take: it calls the Lease service through clientv3's retrying
// client on the same connection.
func (s *grpcStore) LeaseGrant(ctx context.Context, r *conformance.LeaseGrantRequest) (*conformance.LeaseGrantResponse, error) {
	res, err := clientv3.RetryLeaseClient(s.cli).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: r.ID, TTL: r.TTL})
	if err != nil {
		return nil, grpcClassify(err)
	}
	return &conformance.LeaseGrantResponse{Revision: res.Header.Revision, ID: res.ID, TTL: res.TTL}, nil
}

func (s *grpcStore) LeaseRevoke(ctx context.Context, r *conformance.LeaseRevokeRequest) (*conformance.LeaseRevokeResponse, error) {
	res, err := s.cli.Revoke(ctx, clientv3.LeaseID(r.ID))
	if err != nil {
		return nil, grpcClassify(err)
	}
	return &conformance.LeaseRevokeResponse{Revision: res.Header.Revision}, nil
}

func (s *grpcStore) LeaseTimeToLive(ctx context.Context, r *conformance.LeaseTimeToLiveRequest) (*conformance.LeaseTimeToLiveResponse, error) {
	var opts []clientv3.LeaseOption
	if r.Keys {
		opts = append(opts, clientv3.WithAttachedKeys())
	}
	res, err := s.cli.TimeToLive(ctx, clientv3.LeaseID(r.ID), opts...)
	if err != nil {
		return nil, grpcClassify(err)
	}
	out := &conformance.LeaseTimeToLiveResponse{Revision: res.ResponseHeader.Revision, ID: int64(res.ID)}
	if res.TTL == -1 {
		out.Missing = true
		return out, nil
	}
	out.GrantedTTL = res.GrantedTTL
	for _, k := range res.Keys {
		out.Keys = append(out.Keys, conformance.Bytes(k))
	}
	slices.Sort(out.Keys)
	return out, nil
}

func (s *grpcStore) LeaseLeases(ctx context.Context, _ *conformance.LeaseLeasesRequest) (*conformance.LeaseLeasesResponse, error) {
	res, err := s.cli.Leases(ctx)
	if err != nil {
		return nil, grpcClassify(err)
	}
	out := &conformance.LeaseLeasesResponse{Revision: res.ResponseHeader.Revision}
	for _, l := range res.Leases {
		out.IDs = append(out.IDs, int64(l.ID))
	}
	slices.SortFunc(out.IDs, cmp.Compare)
	return out, nil
}

// grpcWatch is one clientv3 watch, on a gRPC stream of its own (clientv3
// shares a stream among the watches whose contexts carry the same
// metadata), so that its RequestProgress speaks for it alone.
type grpcWatch struct {
	cli      *clientv3.Client
	ctx      context.Context // carries the stream's metadata
	cancel   context.CancelFunc
	ch       clientv3.WatchChan
	prevKV   bool
	seen     int64 // a progress notification said every event up to it was delivered
	outcome  conformance.WatchOutcome
	canceled bool
}

// Watch opens the watch and waits for clientv3's created notification
// (or the refusal, whose error is classified).
func (s *grpcStore) Watch(ctx context.Context, r *conformance.WatchRequest) (*conformance.WatchResponse, conformance.Watcher, error) {
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if len(r.RangeEnd) > 0 {
		opts = append(opts, clientv3.WithRange(string(r.RangeEnd)))
	}
	if r.StartRevision != 0 {
		opts = append(opts, clientv3.WithRev(r.StartRevision))
	}
	if r.PrevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if r.NoPut {
		opts = append(opts, clientv3.WithFilterPut())
	}
	if r.NoDelete {
		opts = append(opts, clientv3.WithFilterDelete())
	}
	wctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "conformance-watch", fmt.Sprint(len(s.watches))))
	w := &grpcWatch{cli: s.cli, ctx: wctx, cancel: cancel, ch: s.cli.Watch(wctx, string(r.Key), opts...), prevKV: r.PrevKV}
	select {
	case resp, ok := <-w.ch:
		switch {
		case !ok:
			cancel()
			return nil, nil, errors.New("watch channel closed before the watch was created")
		case resp.Canceled && !resp.Created:
			cancel()
			return nil, nil, watchClassify(resp.Err())
		case !resp.Created:
			cancel()
			return nil, nil, fmt.Errorf("first watch response %+v is no created notification", resp)
		}
		s.watches = append(s.watches, w)
		return &conformance.WatchResponse{Revision: resp.Header.Revision}, w, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, ctx.Err()
	}
}

// watchClassify classifies a watch's refusal: etcd's reasons, as clientv3
// reports them.
func watchClassify(err error) error {
	if err != nil && err.Error() == "mvcc: watcher range is empty" {
		return conformance.ErrWatchEmptyRange
	}
	return grpcClassify(err)
}

func (w *grpcWatch) take(resp clientv3.WatchResponse) {
	for _, ev := range resp.Events {
		typ := conformance.EventPut
		if ev.Type == mvccpb.DELETE {
			typ = conformance.EventDelete
		}
		out := conformance.Event{Type: typ, KeyValue: *kv(ev.Kv)}
		if w.prevKV {
			out.PrevKV = kv(ev.PrevKv)
		}
		w.outcome.Events = append(w.outcome.Events, out)
	}
	switch {
	case resp.Canceled:
		w.canceled = true
		w.outcome.CompactRevision = resp.CompactRevision
	case resp.IsProgressNotify():
		w.seen = max(w.seen, resp.Header.Revision)
	}
}

// Drain reads until a progress notification covers rev, asking for one
// whenever no response is waiting.
func (w *grpcWatch) Drain(ctx context.Context, rev int64) (*conformance.WatchOutcome, error) {
	for !w.canceled && w.seen < rev {
		select {
		case resp, ok := <-w.ch:
			w.receive(resp, ok)
			continue
		default:
		}
		if err := w.cli.RequestProgress(w.ctx); err != nil {
			return nil, err
		}
		select {
		case resp, ok := <-w.ch:
			w.receive(resp, ok)
		case <-ctx.Done():
			return nil, fmt.Errorf("watch drain to %d: %w", rev, ctx.Err())
		}
	}
	out := w.outcome
	out.Events = slices.Clone(out.Events)
	return &out, nil
}

func (w *grpcWatch) receive(resp clientv3.WatchResponse, ok bool) {
	if !ok {
		w.canceled = true
		return
	}
	w.take(resp)
}

// Revision reads the current revision without changing anything.
func (s *grpcStore) Revision(ctx context.Context) (int64, error) {
	res, err := s.cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return res.Header.Revision, nil
}

// Close ends the watches; the cluster is left to the test's cleanup.
func (s *grpcStore) Close() error {
	for _, w := range s.watches {
		w.cancel()
	}
	return nil
}
