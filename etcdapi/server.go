package etcdapi

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Server serves etcd's v3 gRPC API from one kvstore node. It is safe for
// concurrent use. It does not own the node or the gRPC server: the caller
// stops the gRPC server, then closes the Server, then the node.
type Server struct {
	node       *kvstore.Node
	clusterID  uint64
	token      string // the cluster token, from which MemberAdd derives IDs
	clientURLs []string
	peerScheme string // WithPeerURLScheme (peerurls.go)

	// ctx ends when Close is called; every stream handler (Watch,
	// LeaseKeepAlive) also ends then.
	ctx    context.Context
	cancel context.CancelFunc
	// mu guards closed, so that no stream handler starts (streams.Add)
	// once Close waits on streams, and served.
	mu     sync.Mutex
	closed bool
	// served are the gRPC servers Serve created, which Close stops.
	served []*grpc.Server
	// streams counts the stream handlers and the goroutines they start;
	// Close waits for them.
	streams sync.WaitGroup
	// health answers gRPC's health service: SERVING from Register on,
	// NOT_SERVING from Close on.
	health *health.Server
	// clientCertAuth: WithClientCertAuth (authcheck.go).
	clientCertAuth bool
}

// Option configures a Server.
type Option func(*Server)

// WithClusterToken gives the cluster token the node was opened with
// (kvstore.WithClusterToken), from which the cluster ID in every response
// header is derived ([ClusterID]). The default is
// kvstore.DefaultClusterToken, the token of a node opened without one.
func WithClusterToken(token string) Option {
	return func(s *Server) { s.clusterID, s.token = ClusterID(token), token }
}

// WithAdvertiseClientURLs gives the URLs clients reach this member at,
// like etcd's --advertise-client-urls: MemberList reports them for this
// member (clientv3's endpoint sync uses them). A member for which none is
// given is listed with none.
func WithAdvertiseClientURLs(urls ...string) Option {
	return func(s *Server) { s.clientURLs = append([]string(nil), urls...) }
}

// NewServer returns a Server for node. Register it on a gRPC server to
// serve.
func NewServer(node *kvstore.Node, opts ...Option) *Server {
	s := &Server{node: node, clusterID: ClusterID(kvstore.DefaultClusterToken), token: kvstore.DefaultClusterToken}
	for _, opt := range opts {
		opt(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.health = health.NewServer()
	return s
}

// Register registers the KV, Watch, Lease, Cluster, Maintenance and Auth
// services on gs, every call checked against the node's auth state while
// auth is enabled (authcheck.go), and gRPC's health service
// (grpc.health.v1.Health), which reports SERVING, as etcd's does, until
// Close. Call it before gs serves.
func (s *Server) Register(gs *grpc.Server) {
	healthpb.RegisterHealthServer(gs, s.health)
	pb.RegisterKVServer(gs, checkedKV{&kvService{s: s}, s})
	pb.RegisterWatchServer(gs, &watchService{s: s}) // checks each watch it creates
	pb.RegisterLeaseServer(gs, checkedLease{&leaseService{s: s}, s})
	pb.RegisterClusterServer(gs, checkedCluster{&clusterService{s: s}, s})
	pb.RegisterMaintenanceServer(gs, checkedMaintenance{&maintenanceService{s: s}, s})
	pb.RegisterAuthServer(gs, checkedAuth{&authService{s: s}, s})
}

// ErrServerClosed is what Serve returns once Close was called.
var ErrServerClosed = errors.New("etcdapi: server closed")

// Serve serves the API on lis, on a gRPC server of its own made with
// [ServerOptions] and opts, until Close, for a program that needs no other
// gRPC service on the port. It returns ErrServerClosed after Close, and
// otherwise the error that stopped lis. Serve may be called for several
// listeners at once; each gets its own gRPC server. Close stops them all.
func (s *Server) Serve(lis net.Listener, opts ...grpc.ServerOption) error {
	gs := grpc.NewServer(append(ServerOptions(), opts...)...)
	s.Register(gs)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		lis.Close()
		return ErrServerClosed
	}
	s.served = append(s.served, gs)
	s.mu.Unlock()
	err := gs.Serve(lis)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	return err
}

// Close ends every open Watch and LeaseKeepAlive stream (their clients
// see the stream end, and clientv3 opens another, to any endpoint) and
// waits for their handlers and every watch's goroutine to return. Each
// stream's reader goroutine returns as soon as gRPC has ended the stream.
// The gRPC servers of Serve stop accepting calls, finish those in flight
// and close their listeners; on a gRPC server of the caller's, unary calls
// still running finish on their own. Close is safe to call twice; the
// Server must not serve afterwards.
func (s *Server) Close() error {
	s.health.Shutdown()
	s.mu.Lock()
	s.closed = true
	served := s.served
	s.served = nil
	s.mu.Unlock()
	s.cancel()
	for _, gs := range served {
		gs.GracefulStop() // the streams end: s.cancel
	}
	s.streams.Wait()
	return nil
}

// header converts a kvstore header.
func (s *Server) header(h kvstore.Header) *pb.ResponseHeader {
	return &pb.ResponseHeader{
		ClusterId: s.clusterID,
		MemberId:  MemberID(h.MemberID),
		Revision:  h.Revision,
		RaftTerm:  h.RaftTerm,
	}
}

// currentHeader is the header of a response that has no kvstore header of
// its own: this node's current revision and term.
func (s *Server) currentHeader() *pb.ResponseHeader {
	st := s.node.Status()
	return &pb.ResponseHeader{
		ClusterId: s.clusterID,
		MemberId:  MemberID(st.ID),
		Revision:  st.Revision,
		RaftTerm:  st.RaftTerm,
	}
}

// startStream counts a stream handler in, or returns ErrGRPCStopped (which
// clientv3 retries on another endpoint) once Close was called. A handler
// that started calls s.streams.Done when it returns.
func (s *Server) startStream() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return rpctypes.ErrGRPCStopped
	}
	s.streams.Add(1)
	return nil
}

// streamEnded is the error a stream handler returns when its context
// ended: ErrGRPCStopped if the Server closed, else the client's own
// cancellation.
func (s *Server) streamEnded(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return rpctypes.ErrGRPCStopped
	}
	return ctx.Err()
}
