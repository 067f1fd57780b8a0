package etcdapi_test

import (
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestBadInput sends requests clientv3 would not build: each is answered
// with etcd's error (or InvalidArgument), changes nothing, and the server
// keeps serving.
func TestBadInput(t *testing.T) {
	c := newCluster(t, 1)
	ctx := testContext(t)
	cli := c.client(t)
	kv := pb.NewKVClient(cli.ActiveConnection())
	before, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		call func() error
		want error // a gRPC status error: compared by code and message
	}{
		{"unknown sort order", func() error {
			_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), SortOrder: 99})
			return err
		}, rpctypes.ErrGRPCInvalidSortOption},
		{"sort target out of range", func() error {
			_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), SortTarget: 1 << 20})
			return err
		}, rpctypes.ErrGRPCInvalidSortOption},
		{"empty request op", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{}}})
			return err
		}, rpctypes.ErrGRPCKeyNotFound},
		{"unknown compare result", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("k"), Result: 99}},
				Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k")}}}}})
			return err
		}, status.Error(codes.InvalidArgument, "")},
		{"unknown compare target", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("k"), Target: 99}}})
			return err
		}, status.Error(codes.InvalidArgument, "")},
		{"request too large", func() error {
			_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte(strings.Repeat("v", 2<<20))})
			return err
		}, rpctypes.ErrGRPCRequestTooLarge},
		{"unknown lease in a txn", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Lease: 99}}}}})
			return err
		}, rpctypes.ErrGRPCLeaseNotFound},
		// A negative lease ID is no bad input: etcd grants it
		// (semantics_test.go). A TTL above etcd's maximum is.
		{"grant a TTL above the maximum", func() error {
			_, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 1, TTL: 9_000_000_001})
			return err
		}, rpctypes.ErrGRPCLeaseTTLTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			got, want := status.Convert(err), status.Convert(tt.want)
			if got.Code() != want.Code() || want.Message() != "" && got.Message() != want.Message() {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}

	after, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision != before.Header.Revision || len(after.Kvs) != 0 {
		t.Errorf("bad input changed the store: revision %d -> %d, %v", before.Header.Revision, after.Header.Revision, after.Kvs)
	}
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Errorf("the server stopped serving: %v", err)
	}
}
