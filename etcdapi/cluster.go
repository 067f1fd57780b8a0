package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// clusterService serves etcd's Cluster service. Members are named by
// [MemberID]; a member's name is its kvstore ID and its peer URL its
// kvstore address.
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
