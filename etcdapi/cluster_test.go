package etcdapi_test

import (
	"net"
	"testing"

	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/kvtest"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMemberListAndStatus(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)

	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Members) != 3 {
		t.Fatalf("members %+v", list.Members)
	}
	for i, m := range list.Members {
		if m.ID != etcdapi.MemberID(m.Name) || m.Name != c.ID(i) || m.PeerURLs[0] != c.Address(i) || m.IsLearner {
			t.Errorf("member %d: %+v", i, m)
		}
		// A member knows only its own client URLs.
		answering := m.ID == list.Header.MemberId
		if answering && (len(m.ClientURLs) != 1 || m.ClientURLs[0] != "http://"+c.endpoints[i]) || !answering && len(m.ClientURLs) != 0 {
			t.Errorf("member %d (answering: %v): client URLs %v", i, answering, m.ClientURLs)
		}
	}

	leaderID := etcdapi.MemberID(c.WaitLeader().ID())
	put, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitApplied()
	for i, ep := range c.endpoints {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		if st.Header.MemberId != etcdapi.MemberID(c.ID(i)) || st.Leader != leaderID || st.Header.Revision < put.Header.Revision ||
			st.Version == "" || st.RaftTerm == 0 || st.RaftIndex == 0 || st.RaftAppliedIndex == 0 || st.DbSize <= 0 || st.IsLearner {
			t.Errorf("status of %s: %+v", c.ID(i), st)
		}
	}
	if list.Header.ClusterId != etcdapi.ClusterID("kvstore") {
		t.Errorf("cluster ID %d", list.Header.ClusterId)
	}
}

// Member IDs are stable across releases (clients and scripts keep them):
// these are pinned, the FNV-1a 64 hash of a plain ID and the value of an
// etcd-style one.
func TestIDs(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want uint64
	}{
		{"n1", 0x08b37b07b558d4c0},
		{"n2", 0x08b37e07b558d9d9},
		{"8e9e05c52164694d", 0x8e9e05c52164694d},
	} {
		if got := etcdapi.MemberID(tc.id); got != tc.want {
			t.Errorf("MemberID(%q) = %#x, want %#x", tc.id, got, tc.want)
		}
	}
	if etcdapi.MemberID("") == 0 {
		t.Error("MemberID(\"\") is 0, which etcd reserves for no member")
	}
}

// TestCloseEndsStreams closes a Server whose gRPC server keeps serving:
// its watch and keep-alive streams end, Close returns, no handler is left
// blocked, and the health service turns NOT_SERVING.
func TestCloseEndsStreams(t *testing.T) {
	c := kvtest.NewCluster(t, 1)
	c.WaitLeader()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := etcdapi.NewServer(c.Node(0))
	gs := grpc.NewServer(etcdapi.ServerOptions()...)
	srv.Register(gs)
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testContext(t)
	watch, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k")}}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || !resp.Created {
		t.Fatalf("%+v %v", resp, err)
	}
	keepAlive, err := pb.NewLeaseClient(conn).LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := keepAlive.Send(&pb.LeaseKeepAliveRequest{ID: 1}); err != nil {
		t.Fatal(err)
	}
	if resp, err := keepAlive.Recv(); err != nil || resp.TTL != 0 {
		t.Fatalf("keep alive of an unknown lease: %+v %v, want TTL 0", resp, err)
	}

	healthClient := healthpb.NewHealthClient(conn)
	if h, err := healthClient.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health before Close: %v %v, want SERVING", h, err)
	}

	srv.Close()
	if h, err := healthClient.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after Close: %v %v, want NOT_SERVING", h, err)
	}
	// Unavailable "server stopped": clientv3 retries on another endpoint.
	if _, err := watch.Recv(); rpctypes.Error(err) != rpctypes.ErrStopped {
		t.Errorf("watch stream after Close: %v, want ErrStopped", err)
	}
	if _, err := keepAlive.Recv(); rpctypes.Error(err) != rpctypes.ErrStopped {
		t.Errorf("keep-alive stream after Close: %v, want ErrStopped", err)
	}
	late, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Recv(); rpctypes.Error(err) != rpctypes.ErrStopped {
		t.Errorf("a stream opened after Close: %v, want ErrStopped", err)
	}
	srv.Close() // twice is fine
}
