package etcdapi

import (
	"context"
	"fmt"
	"math"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// kvService serves etcd's KV service: each call is the node's call of the
// same name, with the request's fields as options.
type kvService struct {
	pb.UnimplementedKVServer
	s *Server
}

func (k *kvService) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	opts, err := rangeOptions(r)
	if err != nil {
		return nil, err
	}
	res, err := k.s.node.Get(ctx, r.Key, opts...)
	if err != nil {
		return nil, toGRPC(err)
	}
	return k.s.rangeResponse(res), nil
}

func (k *kvService) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	res, err := k.s.node.Put(ctx, r.Key, r.Value, putOptions(r)...)
	if err != nil {
		return nil, toGRPC(err)
	}
	return k.s.putResponse(res), nil
}

func (k *kvService) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	res, err := k.s.node.Delete(ctx, r.Key, deleteOptions(r)...)
	if err != nil {
		return nil, toGRPC(err)
	}
	return k.s.deleteResponse(res), nil
}

func (k *kvService) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	cmps, then, els, err := txnParts(r)
	if err != nil {
		return nil, err
	}
	res, err := k.s.node.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return nil, toGRPC(err)
	}
	return k.s.txnResponse(res), nil
}

func (k *kvService) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	var opts []kvstore.CompactOption
	if r.Physical {
		opts = append(opts, kvstore.WithCompactPhysical())
	}
	res, err := k.s.node.Compact(ctx, r.Revision, opts...)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.CompactionResponse{Header: k.s.header(res.Header)}, nil
}

// rangeOptions translates a RangeRequest's fields. RangeEnd follows etcd
// in the node as here: empty for one key, "\x00" for every key from Key.
func rangeOptions(r *pb.RangeRequest) ([]kvstore.OpOption, error) {
	var opts []kvstore.OpOption
	if len(r.RangeEnd) > 0 {
		opts = append(opts, kvstore.WithRange(r.RangeEnd))
	}
	if r.Revision != 0 {
		opts = append(opts, kvstore.WithRev(r.Revision))
	}
	if r.Limit != 0 {
		opts = append(opts, kvstore.WithLimit(r.Limit))
	}
	if r.SortOrder != pb.RangeRequest_NONE || r.SortTarget != pb.RangeRequest_KEY {
		// The enums have etcd's numbering in both packages; a value
		// outside them is refused by the node, and one too large to
		// convert here the same way.
		if r.SortOrder < 0 || r.SortOrder > math.MaxUint8 || r.SortTarget < 0 || r.SortTarget > math.MaxUint8 {
			return nil, rpctypes.ErrGRPCInvalidSortOption
		}
		opts = append(opts, kvstore.WithSort(kvstore.SortTarget(r.SortTarget), kvstore.SortOrder(r.SortOrder)))
	}
	if r.Serializable {
		opts = append(opts, kvstore.WithSerializable())
	}
	if r.KeysOnly {
		opts = append(opts, kvstore.WithKeysOnly())
	}
	if r.CountOnly {
		opts = append(opts, kvstore.WithCountOnly())
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 {
		opts = append(opts, kvstore.WithModRevisionRange(r.MinModRevision, r.MaxModRevision))
	}
	if r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		opts = append(opts, kvstore.WithCreateRevisionRange(r.MinCreateRevision, r.MaxCreateRevision))
	}
	return opts, nil
}

func putOptions(r *pb.PutRequest) []kvstore.OpOption {
	var opts []kvstore.OpOption
	if r.Lease != 0 {
		opts = append(opts, kvstore.WithLease(r.Lease))
	}
	if r.PrevKv {
		opts = append(opts, kvstore.WithPrevKV())
	}
	if r.IgnoreValue {
		opts = append(opts, kvstore.WithIgnoreValue())
	}
	if r.IgnoreLease {
		opts = append(opts, kvstore.WithIgnoreLease())
	}
	return opts
}

func deleteOptions(r *pb.DeleteRangeRequest) []kvstore.OpOption {
	var opts []kvstore.OpOption
	if len(r.RangeEnd) > 0 {
		opts = append(opts, kvstore.WithRange(r.RangeEnd))
	}
	if r.PrevKv {
		opts = append(opts, kvstore.WithPrevKV())
	}
	return opts
}

// txnParts translates a txn's compares and branches, nested txns
// included.
func txnParts(r *pb.TxnRequest) (cmps []kvstore.Cmp, then, els []kvstore.Op, err error) {
	for _, c := range r.Compare {
		cmp, err := compare(c)
		if err != nil {
			return nil, nil, nil, err
		}
		cmps = append(cmps, cmp)
	}
	if then, err = requestOps(r.Success); err != nil {
		return nil, nil, nil, err
	}
	if els, err = requestOps(r.Failure); err != nil {
		return nil, nil, nil, err
	}
	return cmps, then, els, nil
}

func requestOps(reqs []*pb.RequestOp) ([]kvstore.Op, error) {
	ops := make([]kvstore.Op, 0, len(reqs))
	for _, r := range reqs {
		switch req := r.Request.(type) {
		case *pb.RequestOp_RequestRange:
			opts, err := rangeOptions(req.RequestRange)
			if err != nil {
				return nil, err
			}
			ops = append(ops, kvstore.OpGet(req.RequestRange.Key, opts...))
		case *pb.RequestOp_RequestPut:
			ops = append(ops, kvstore.OpPut(req.RequestPut.Key, req.RequestPut.Value, putOptions(req.RequestPut)...))
		case *pb.RequestOp_RequestDeleteRange:
			ops = append(ops, kvstore.OpDelete(req.RequestDeleteRange.Key, deleteOptions(req.RequestDeleteRange)...))
		case *pb.RequestOp_RequestTxn:
			cmps, then, els, err := txnParts(req.RequestTxn)
			if err != nil {
				return nil, err
			}
			ops = append(ops, kvstore.OpTxn(cmps, then, els))
		default:
			// etcd's own check: a RequestOp with no request set.
			return nil, rpctypes.ErrGRPCKeyNotFound
		}
	}
	return ops, nil
}

// compareResults maps etcd's compare results to the node's operators.
var compareResults = map[pb.Compare_CompareResult]string{
	pb.Compare_EQUAL:     "=",
	pb.Compare_NOT_EQUAL: "!=",
	pb.Compare_GREATER:   ">",
	pb.Compare_LESS:      "<",
}

func compare(c *pb.Compare) (kvstore.Cmp, error) {
	result, ok := compareResults[c.Result]
	if !ok {
		return kvstore.Cmp{}, invalidCompare(c)
	}
	var cmp kvstore.Cmp
	switch c.Target {
	case pb.Compare_VERSION:
		cmp = kvstore.Compare(kvstore.Version(c.Key), result, c.GetVersion())
	case pb.Compare_CREATE:
		cmp = kvstore.Compare(kvstore.CreateRevision(c.Key), result, c.GetCreateRevision())
	case pb.Compare_MOD:
		cmp = kvstore.Compare(kvstore.ModRevision(c.Key), result, c.GetModRevision())
	case pb.Compare_VALUE:
		cmp = kvstore.Compare(kvstore.Value(c.Key), result, c.GetValue())
	case pb.Compare_LEASE:
		cmp = kvstore.Compare(kvstore.LeaseValue(c.Key), result, c.GetLease())
	default:
		return kvstore.Cmp{}, invalidCompare(c)
	}
	if len(c.RangeEnd) > 0 {
		cmp = cmp.WithRange(c.RangeEnd)
	}
	return cmp, nil
}

func invalidCompare(c *pb.Compare) error {
	return toGRPC(fmt.Errorf("%w: result %v, target %v on %q", kvstore.ErrInvalidCompare, c.Result, c.Target, c.Key))
}

func (s *Server) rangeResponse(r *kvstore.GetResponse) *pb.RangeResponse {
	out := &pb.RangeResponse{Header: s.header(r.Header), More: r.More, Count: r.Count}
	if len(r.KVs) > 0 {
		out.Kvs = make([]*mvccpb.KeyValue, len(r.KVs))
		for i := range r.KVs {
			out.Kvs[i] = keyValue(&r.KVs[i])
		}
	}
	return out
}

func (s *Server) putResponse(r *kvstore.PutResponse) *pb.PutResponse {
	return &pb.PutResponse{Header: s.header(r.Header), PrevKv: keyValue(r.PrevKV)}
}

func (s *Server) deleteResponse(r *kvstore.DeleteResponse) *pb.DeleteRangeResponse {
	out := &pb.DeleteRangeResponse{Header: s.header(r.Header), Deleted: r.Deleted}
	for i := range r.PrevKVs {
		out.PrevKvs = append(out.PrevKvs, keyValue(&r.PrevKVs[i]))
	}
	return out
}

func (s *Server) txnResponse(r *kvstore.TxnResponse) *pb.TxnResponse {
	out := &pb.TxnResponse{Header: s.header(r.Header), Succeeded: r.Succeeded, Responses: make([]*pb.ResponseOp, len(r.Responses))}
	for i, op := range r.Responses {
		switch {
		case op.Get != nil:
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: s.rangeResponse(op.Get)}}
		case op.Put != nil:
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: s.putResponse(op.Put)}}
		case op.Delete != nil:
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: s.deleteResponse(op.Delete)}}
		case op.Txn != nil:
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: s.txnResponse(op.Txn)}}
		}
	}
	return out
}

// keyValue converts a key version; nil stays nil.
func keyValue(kv *kvstore.KeyValue) *mvccpb.KeyValue {
	if kv == nil {
		return nil
	}
	return &mvccpb.KeyValue{
		Key:            kv.Key,
		Value:          kv.Value,
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          kv.Lease,
	}
}
