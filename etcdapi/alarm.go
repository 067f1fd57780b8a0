package etcdapi

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
//   - ACTIVATE raises the alarm of that member and kind through raft
//     (kvstore.Node.RaiseAlarm) and answers it, active before or not; kind
//     NONE raises nothing and answers none, as etcd. The member is matched
//     among the cluster's members and the alarms' own; etcd records an
//     alarm for any member ID, but a kvstore alarm names a kvstore member,
//     which an ID matching none of those does not give: it is
//     ErrGRPCMemberNotFound.
//
// Alarms of a kind this build does not know are left out of the answers.
func (m *maintenanceService) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	switch r.Action {
	case pb.AlarmRequest_GET:
		return m.listAlarms(ctx, r.Alarm)
	case pb.AlarmRequest_DEACTIVATE:
		return m.disarm(ctx, r.MemberID, r.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		return m.activate(ctx, r.MemberID, r.Alarm)
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

func (m *maintenanceService) activate(ctx context.Context, member uint64, t pb.AlarmType) (*pb.AlarmResponse, error) {
	out := &pb.AlarmResponse{Alarms: []*pb.AlarmMember{}}
	kind, ok := alarmKind(t)
	if !ok {
		out.Header = m.s.currentHeader()
		return out, nil
	}
	name, err := m.alarmMember(ctx, member)
	if err != nil {
		return nil, err
	}
	if err := m.s.node.RaiseAlarm(ctx, name, kind); err != nil {
		return nil, toGRPC(err)
	}
	out.Header = m.s.currentHeader()
	out.Alarms = append(out.Alarms, &pb.AlarmMember{MemberID: member, Alarm: t})
	return out, nil
}

// alarmMember returns the kvstore ID whose etcd ID is id, among the
// cluster's members and the members of the active alarms, or
// ErrGRPCMemberNotFound.
func (m *maintenanceService) alarmMember(ctx context.Context, id uint64) (string, error) {
	name, err := m.s.memberName(ctx, id)
	if !errors.Is(err, rpctypes.ErrGRPCMemberNotFound) {
		return name, err
	}
	alarms, aerr := m.s.node.Alarms(ctx)
	if aerr != nil {
		return "", toGRPC(aerr)
	}
	for _, a := range alarms {
		if MemberID(a.MemberID) == id {
			return a.MemberID, nil
		}
	}
	return "", err
}

// alarmKind returns kvstore's kind of etcd's type t, or false for NONE and
// the types kvstore has no kind for.
func alarmKind(t pb.AlarmType) (kvstore.AlarmKind, bool) {
	switch t {
	case pb.AlarmType_NOSPACE:
		return kvstore.AlarmNoSpace, true
	case pb.AlarmType_CORRUPT:
		return kvstore.AlarmCorrupt, true
	}
	return 0, false
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
