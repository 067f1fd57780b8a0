package etcdapi

import (
	"context"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Alarm serves etcd's alarm RPC on the node's alarms (kvstore.Node.Alarms,
// DisarmAlarm), as etcd's server answers it:
//
//   - GET lists the active alarms of the kind asked for, or all of them for
//     NONE; member_id is ignored. The list is a linearizable read.
//   - DEACTIVATE clears the alarm of that member and kind and answers it, or
//     answers none when it is not active (member_id 0 or kind NONE names no
//     alarm; clientv3's AlarmDisarm with both zero disarms every alarm
//     itself, listing them first). The member is matched among the alarms'
//     own members, so the alarm of a member since removed can be cleared.
//     Clearing NOSPACE while the store is still over its quota raises it
//     again and answers ErrGRPCNoSpace.
//   - ACTIVATE is codes.Unimplemented: a kvstore node raises its alarms
//     itself (NOSPACE when a write would pass the quota) and has no API to
//     raise one on request.
//
// Alarms of a kind this build does not know are left out of the answers.
func (m *maintenanceService) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	switch r.Action {
	case pb.AlarmRequest_GET:
		return m.listAlarms(ctx, r.Alarm)
	case pb.AlarmRequest_DEACTIVATE:
		return m.disarm(ctx, r.MemberID, r.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		return nil, status.Error(codes.Unimplemented, "etcdapi: kvstore raises its alarms itself and cannot activate one on request")
	}
	return nil, status.Errorf(codes.InvalidArgument, "etcdapi: unknown alarm action %d", r.Action)
}

func (m *maintenanceService) listAlarms(ctx context.Context, kind pb.AlarmType) (*pb.AlarmResponse, error) {
	alarms, err := m.s.node.Alarms(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.AlarmResponse{Header: m.s.currentHeader(), Alarms: []*pb.AlarmMember{}}
	for _, a := range alarms {
		t, ok := alarmType(a.Kind)
		if ok && (kind == pb.AlarmType_NONE || kind == t) {
			out.Alarms = append(out.Alarms, &pb.AlarmMember{MemberID: MemberID(a.MemberID), Alarm: t})
		}
	}
	return out, nil
}

func (m *maintenanceService) disarm(ctx context.Context, member uint64, kind pb.AlarmType) (*pb.AlarmResponse, error) {
	alarms, err := m.s.node.Alarms(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.AlarmResponse{Alarms: []*pb.AlarmMember{}}
	for _, a := range alarms {
		t, ok := alarmType(a.Kind)
		if !ok || t != kind || MemberID(a.MemberID) != member {
			continue
		}
		if err := m.s.node.DisarmAlarm(ctx, a.MemberID, a.Kind); err != nil {
			return nil, toGRPC(err)
		}
		out.Alarms = append(out.Alarms, &pb.AlarmMember{MemberID: member, Alarm: t})
	}
	out.Header = m.s.currentHeader()
	return out, nil
}

// alarmType returns etcd's type of kind, or false for a kind etcd has none
// for.
func alarmType(kind kvstore.AlarmKind) (pb.AlarmType, bool) {
	switch kind {
	case kvstore.AlarmNoSpace:
		return pb.AlarmType_NOSPACE, true
	case kvstore.AlarmCorrupt:
		return pb.AlarmType_CORRUPT, true
	}
	return pb.AlarmType_NONE, false
}
