package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"
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
