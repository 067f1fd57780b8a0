package etcdapi

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// leaseService serves etcd's Lease service from the node's leases.
type leaseService struct {
	pb.UnimplementedLeaseServer
	s *Server
}

func (l *leaseService) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	var opts []kvstore.LeaseOption
	if r.ID != 0 {
		opts = append(opts, kvstore.WithLeaseID(r.ID))
	}
	res, err := l.s.node.Grant(ctx, r.TTL, opts...)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseGrantResponse{Header: l.s.header(res.Header), ID: res.ID, TTL: res.TTL}, nil
}

func (l *leaseService) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	res, err := l.s.node.Revoke(ctx, r.ID)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseRevokeResponse{Header: l.s.header(res.Header)}, nil
}

// LeaseKeepAlive renews each lease the client names, in order, and answers
// each with its full TTL; an unknown (expired, revoked) lease is answered
// with TTL 0, as etcd does, which clientv3 reports as the lease's end.
func (l *leaseService) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(l.s.ctx, cancel)
	defer stop()
	if err := l.s.startStream(); err != nil {
		return err
	}
	defer l.s.streams.Done()

	reqs, recvErr := receive(ctx, stream.Recv)
	for {
		select {
		case <-ctx.Done():
			return l.s.streamEnded(ctx)
		case err := <-recvErr:
			return err
		case req := <-reqs:
			resp := &pb.LeaseKeepAliveResponse{ID: req.ID}
			res, err := l.s.node.KeepAliveOnce(ctx, req.ID)
			switch {
			case errors.Is(err, kvstore.ErrLeaseNotFound):
				resp.Header = l.s.currentHeader()
			case err != nil:
				return toGRPC(err)
			default:
				resp.Header, resp.TTL = l.s.header(res.Header), res.TTL
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}

func (l *leaseService) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	res, err := l.s.node.TimeToLive(ctx, r.ID, r.Keys)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseTimeToLiveResponse{Header: l.s.header(res.Header), ID: res.ID, TTL: res.TTL, GrantedTTL: res.GrantedTTL, Keys: res.Keys}, nil
}

func (l *leaseService) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	res, err := l.s.node.Leases(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.LeaseLeasesResponse{Header: l.s.header(res.Header)}
	for _, id := range res.IDs {
		out.Leases = append(out.Leases, &pb.LeaseStatus{ID: id})
	}
	return out, nil
}
