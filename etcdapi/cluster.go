package etcdapi

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// clusterService serves etcd's Cluster service. Members are named by
// [MemberID]. A member's name and client URLs are those it published
// (kvstore.WithMemberName, kvstore.WithClientURLs); one that published
// none is listed under its kvstore ID, or with no name (etcdctl's
// "unstarted") if that ID is etcd-style, as a member added with MemberAdd
// and not started yet has; the answering member lists its
// WithAdvertiseClientURLs then. Its peer URL is its recorded address
// (peerurls.go).
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
	for _, m := range members {
		out.Members = append(out.Members, c.s.pbMember(m))
	}
	return out, nil
}

// pbMember converts a member as MemberList lists it.
func (s *Server) pbMember(m kvstore.Member) *pb.Member {
	pm := &pb.Member{ID: MemberID(m.ID), Name: m.Name, PeerURLs: []string{s.peerURL(m.Address)}, ClientURLs: m.ClientURLs, IsLearner: m.Learner}
	if m.Name != "" || len(m.ClientURLs) != 0 {
		return pm
	}
	if _, etcdStyle := etcdStyleID(m.ID); !etcdStyle {
		pm.Name = m.ID
	}
	if m.ID == s.node.ID() {
		pm.Name = m.ID
		pm.ClientURLs = s.clientURLs
	}
	return pm
}

// MemberAdd adds a member, a voter or (IsLearner) a learner, under the
// etcd-style ID [PeerMemberID] derives from its one peer URL and the
// cluster token: the ID the member started with --initial-cluster-state
// existing finds for itself. The response names the new member and lists
// the members. A peer URL another member has is ErrGRPCPeerURLExist.
func (c *clusterService) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	addr, err := c.s.peerAddress(r.PeerURLs)
	if err != nil {
		return nil, err
	}
	id := PeerMemberID(r.PeerURLs, c.s.token)
	members, err := c.s.node.Members(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	for _, m := range members {
		switch {
		case m.Address == addr:
			return nil, rpctypes.ErrGRPCPeerURLExist
		case m.ID == id:
			return nil, rpctypes.ErrGRPCMemberExist
		}
	}
	if r.IsLearner {
		err = c.s.node.AddLearner(ctx, id, addr)
	} else {
		err = c.s.node.AddVoter(ctx, id, addr)
	}
	if errors.Is(err, kvstore.ErrMemberExists) {
		// Taken meanwhile; say which, as the check above does.
		return nil, rpctypes.ErrGRPCPeerURLExist
	}
	if err != nil {
		return nil, toGRPC(err)
	}
	list, err := c.MemberList(ctx, &pb.MemberListRequest{})
	if err != nil {
		return nil, err
	}
	added := &pb.Member{ID: MemberID(id), PeerURLs: r.PeerURLs, IsLearner: r.IsLearner}
	return &pb.MemberAddResponse{Header: list.Header, Member: added, Members: list.Members}, nil
}

// MemberUpdate records the member's new peer URL (kvstore.Node.SetMemberAddress):
// the leader records it only once the member answers there. The response
// lists the members.
func (c *clusterService) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	addr, err := c.s.peerAddress(r.PeerURLs)
	if err != nil {
		return nil, err
	}
	id, err := c.s.memberName(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if err := c.s.node.SetMemberAddress(ctx, id, addr); err != nil {
		if errors.Is(err, kvstore.ErrMemberExists) {
			return nil, rpctypes.ErrGRPCPeerURLExist
		}
		return nil, toGRPC(err)
	}
	list, err := c.MemberList(ctx, &pb.MemberListRequest{})
	if err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Header: list.Header, Members: list.Members}, nil
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
