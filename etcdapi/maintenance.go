package etcdapi

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maintenanceService serves etcd's Maintenance service.
type maintenanceService struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

// Status reports this member's state without asking the others. Version
// is the etcd API version this package speaks (that of the
// go.etcd.io/etcd/api/v3 module it is built with), which clients compare
// with their own. DbSize and DbSizeInUse are both the store's approximate
// size in memory, history included: kvstore has no backend file to be
// larger than the data.
func (m *maintenanceService) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	st := m.s.node.Status()
	members, err := m.s.node.Members(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.StatusResponse{
		Header:           m.s.currentHeader(),
		Version:          version.Version,
		DbSize:           st.StoreSize,
		DbSizeInUse:      st.StoreSize,
		RaftIndex:        st.CommitIndex,
		RaftTerm:         st.RaftTerm,
		RaftAppliedIndex: st.AppliedIndex,
	}
	if st.LeaderID != "" {
		out.Leader = MemberID(st.LeaderID)
	}
	for _, mem := range members {
		if mem.ID == st.ID {
			out.IsLearner = mem.Learner
		}
	}
	return out, nil
}

// HashKV hashes this member's store at the revision asked for (0 for the
// current one); members that applied the same log agree.
func (m *maintenanceService) HashKV(_ context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	res, err := m.s.node.HashKV(r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	rev := r.Revision
	if rev == 0 {
		rev = res.Header.Revision
	}
	return &pb.HashKVResponse{Header: m.s.header(res.Header), Hash: res.Hash, CompactRevision: res.CompactRevision, HashRevision: rev}, nil
}

// MoveLeader hands leadership to the voter named, through whichever
// member receives it (etcd needs the leader; etcdctl finds it first). A
// target that is not a voter of the cluster is ErrGRPCBadLeaderTransferee.
func (m *maintenanceService) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	target, err := m.s.member(ctx, r.TargetID)
	if errors.Is(err, rpctypes.ErrGRPCMemberNotFound) || err == nil && target.Learner {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	if err != nil {
		return nil, err
	}
	if err := m.s.node.TransferLeadership(ctx, target.ID); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.MoveLeaderResponse{Header: m.s.currentHeader()}, nil
}

// Defragment rebuilds this member's in-memory key index packed
// (kvstore.Node.Defragment), giving back the memory its half-full nodes
// hold; as etcd's, it affects only the member called, and that member's
// reads and writes wait while it runs. There is no backend file to
// rewrite: compaction already frees the versions it discards.
func (m *maintenanceService) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := m.s.node.Defragment(ctx); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.DefragmentResponse{Header: m.s.currentHeader()}, nil
}

// Hash is the CRC-32C of this member's whole state as a backup holds it
// (kvstore.Node.Hash), as etcd's hashes its whole backend; the header's
// revision is that of the state hashed. Like etcd's it reads local state
// and changes with every entry applied: compare members with HashKV.
func (m *maintenanceService) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	res, err := m.s.node.Hash()
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashResponse{Header: m.s.header(res.Header), Hash: res.Hash}, nil
}

// errDowngradeUnsupported answers every Downgrade request.
var errDowngradeUnsupported = status.Error(codes.Unimplemented,
	"etcdserver: downgrade is not supported: a kvstore cluster has no storage versions to downgrade between")

// Downgrade answers codes.Unimplemented to every action (VALIDATE, ENABLE,
// CANCEL): etcd's downgrade moves a cluster's storage schema back one
// minor version, and kvstore's data formats are versioned on their own
// (each reads its older versions), not as etcd's.
func (m *maintenanceService) Downgrade(context.Context, *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, errDowngradeUnsupported
}
