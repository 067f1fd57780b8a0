package etcdapi

import (
	"context"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// clusterService serves etcd's Cluster service. Members are named by
// [MemberID]; a member's name is its kvstore ID and its peer URL its
// kvstore address. MemberAdd and MemberUpdate answer Unimplemented: a
// kvstore member is added under the ID it will open with, which etcd's
// request does not carry.
type clusterService struct {
	pb.UnimplementedClusterServer
	s *Server
}

func (c *clusterService) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	members, err := c.s.node.Members(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.MemberListResponse{Header: c.s.currentHeader()}
	self := c.s.node.ID()
	for _, m := range members {
		pm := &pb.Member{ID: MemberID(m.ID), Name: m.ID, PeerURLs: []string{m.Address}, IsLearner: m.Learner}
		if m.ID == self {
			pm.ClientURLs = c.s.clientURLs
		}
		out.Members = append(out.Members, pm)
	}
	return out, nil
}

// MemberRemove removes the member; the response lists the members left.
func (c *clusterService) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	id, err := c.s.memberName(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if err := c.s.node.RemoveMember(ctx, id); err != nil {
		return nil, toGRPC(err)
	}
	list, err := c.MemberList(ctx, &pb.MemberListRequest{})
	if err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: list.Header, Members: list.Members}, nil
}

// MemberPromote makes a learner a voter; the response lists the members.
func (c *clusterService) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	id, err := c.s.memberName(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if err := c.s.node.PromoteLearner(ctx, id); err != nil {
		return nil, toGRPC(err)
	}
	list, err := c.MemberList(ctx, &pb.MemberListRequest{})
	if err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{Header: list.Header, Members: list.Members}, nil
}

// memberName returns the kvstore ID of the member whose etcd ID is id, or
// ErrGRPCMemberNotFound.
func (s *Server) memberName(ctx context.Context, id uint64) (string, error) {
	m, err := s.member(ctx, id)
	if err != nil {
		return "", err
	}
	return m.ID, nil
}

func (s *Server) member(ctx context.Context, id uint64) (kvstore.Member, error) {
	members, err := s.node.Members(ctx)
	if err != nil {
		return kvstore.Member{}, toGRPC(err)
	}
	for _, m := range members {
		if MemberID(m.ID) == id {
			return m, nil
		}
	}
	return kvstore.Member{}, rpctypes.ErrGRPCMemberNotFound
}
