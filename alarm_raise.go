package kvstore

import (
	"context"
	"fmt"

	"github.com/kvstore/kvstore/internal/wire"
)

// RaiseAlarm raises the alarm of kind in member's name, through raft, and
// returns once that is applied on this node; raising an alarm already
// active does nothing. It is etcd's Alarm ACTIVATE, which an operator (or
// a test) uses to stop writes as the node itself would: while a NOSPACE
// alarm is active every member refuses the writes that add data. The
// member need not be one of the cluster's (etcd records any member ID),
// so that an alarm can be raised and cleared for a member since removed.
//
// An empty member (or one over 64 KiB), or a kind other than AlarmNoSpace
// and AlarmCorrupt, is ErrInvalidAlarm, and nothing is proposed. If ctx
// ends first the alarm may still be raised.
func (n *Node) RaiseAlarm(ctx context.Context, member string, kind AlarmKind) error {
	if member == "" || len(member) > wire.MaxAlarmMember {
		return fmt.Errorf("%w: member ID of %d bytes", ErrInvalidAlarm, len(member))
	}
	if kind != AlarmNoSpace && kind != AlarmCorrupt {
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidAlarm, uint8(kind))
	}
	_, err := n.propose(ctx, alarmCommand(wire.AlarmActivate, member, kind))
	return err
}
