package etcdapi_test

import (
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rawCodec sends a rawMessage's bytes as they are, and decodes nothing:
// a client that puts on the wire what no etcd client would.
type rawCodec struct{}

type rawMessage []byte

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(rawMessage), nil }
func (rawCodec) Unmarshal([]byte, any) error   { return nil }
func (rawCodec) Name() string                  { return "proto" }

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
		{"129 ops in a txn", func() error {
			ops := make([]*pb.RequestOp, 129)
			for i := range ops {
				ops[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: fmt.Appendf(nil, "k%d", i)}}}
			}
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: ops})
			return err
		}, rpctypes.ErrGRPCTooManyOps},
		// Bytes that are no PutRequest (a field tag of a wire type that
		// does not exist): gRPC's own answer, as etcd's server gives it.
		{"malformed message", func() error {
			err := cli.ActiveConnection().Invoke(ctx, "/etcdserverpb.KV/Put", rawMessage{0x0f, 0xff, 0xff}, rawMessage{}, grpc.ForceCodec(rawCodec{}))
			if !strings.HasPrefix(status.Convert(err).Message(), "grpc: error unmarshalling request: ") {
				return fmt.Errorf("not the server's decoding error: %w", err)
			}
			return err
		}, status.Error(codes.Internal, "")},
		{"remove an unknown member", func() error {
			_, err := pb.NewClusterClient(cli.ActiveConnection()).MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 42})
			return err
		}, rpctypes.ErrGRPCMemberNotFound},
		{"promote an unknown member", func() error {
			_, err := pb.NewClusterClient(cli.ActiveConnection()).MemberPromote(ctx, &pb.MemberPromoteRequest{ID: 42})
			return err
		}, rpctypes.ErrGRPCMemberNotFound},
		{"revoke an unknown lease", func() error {
			_, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: 99})
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
