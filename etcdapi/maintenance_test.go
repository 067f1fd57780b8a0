package etcdapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore/etcdapi"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHashKVMoveLeaderDefragment(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)
	put, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "k", "w"); err != nil {
		t.Fatal(err)
	}
	c.WaitApplied()
	var hashes []uint32
	for _, ep := range c.endpoints {
		h, err := cli.HashKV(ctx, ep, put.Header.Revision)
		if err != nil {
			t.Fatal(err)
		}
		if h.HashRevision != put.Header.Revision {
			t.Errorf("hash revision %d, want %d", h.HashRevision, put.Header.Revision)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Errorf("members disagree: %v", hashes)
	}
	now, err := cli.HashKV(ctx, c.endpoints[0], 0)
	if err != nil || now.Hash == hashes[0] {
		t.Errorf("hash at the current revision %+v %v: want another hash than at %d", now, err, put.Header.Revision)
	}

	target := c.Followers()[0]
	if _, err := cli.MoveLeader(ctx, etcdapi.MemberID(target.ID())); err != nil {
		t.Fatal(err)
	}
	st, err := cli.Status(ctx, c.endpoints[c.Index(target)])
	if err != nil || st.Leader != etcdapi.MemberID(target.ID()) {
		t.Errorf("after MoveLeader: %+v %v, want %s leading", st, err, target.ID())
	}
	if _, err := cli.MoveLeader(ctx, 42); !errors.Is(err, rpctypes.ErrBadLeaderTransferee) {
		t.Errorf("move to an unknown member: %v, want ErrBadLeaderTransferee", err)
	}
	if _, err := cli.Defragment(ctx, c.endpoints[0]); err != nil {
		t.Errorf("defragment: %v", err)
	}
}

func TestMemberPromoteAndRemove(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	leader := c.WaitLeader()
	cli := c.client(t, c.Index(leader))

	learner := c.AddNode()
	c.Isolate(learner) // it cannot catch up
	if err := leader.AddLearner(ctx, c.ID(learner), c.Address(learner)); err != nil {
		t.Fatal(err)
	}
	list, err := cli.MemberList(ctx)
	if err != nil || len(list.Members) != 4 || !list.Members[3].IsLearner {
		t.Fatalf("with a learner: %+v %v", list, err)
	}
	// SEMANTICS.md rule 25: a learner that has not caught up is not
	// promoted, with etcd's error.
	if _, err := cli.MemberPromote(ctx, etcdapi.MemberID(c.ID(learner))); !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) {
		t.Fatalf("promote a learner that has not caught up: %v, want ErrMemberLearnerNotReady", err)
	}
	c.Heal()
	if _, err := c.Node(learner).Get(ctx, []byte("any")); err != nil { // returns once it has caught up
		t.Fatal(err)
	}
	promoted, err := cli.MemberPromote(ctx, etcdapi.MemberID(c.ID(learner)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range promoted.Members {
		if m.IsLearner {
			t.Errorf("still a learner after MemberPromote: %+v", m)
		}
	}
	if _, err := cli.MemberPromote(ctx, etcdapi.MemberID(c.ID(learner))); !errors.Is(err, rpctypes.ErrMemberNotLearner) {
		t.Errorf("promote a voter: %v, want ErrMemberNotLearner", err)
	}

	removed, err := cli.MemberRemove(ctx, etcdapi.MemberID(c.ID(learner)))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed.Members) != 3 {
		t.Errorf("after MemberRemove: %+v", removed.Members)
	}
	// The removed member stops serving once it hears of its removal; it
	// is no longer part of the cluster whose agreement cleanup checks.
	select {
	case <-c.Node(learner).Removed():
	case <-ctx.Done():
		// Say what the member saw: whether it had the removal entry, or
		// any configuration at all, tells which way the notice was lost.
		n := c.Node(learner)
		st := n.Status()
		mctx, cancel := context.WithTimeout(context.Background(), time.Second)
		members, err := n.Members(mctx)
		cancel()
		t.Fatalf("the removed member never learned it was removed: %v; it is %s in term %d (leader %q, commit %d, applied %d) and lists %+v (%v)",
			ctx.Err(), st.RaftState, st.RaftTerm, st.LeaderID, st.CommitIndex, st.AppliedIndex, members, err)
	}
	c.Stop(learner)
	if _, err := cli.MemberRemove(ctx, 42); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Errorf("remove an unknown member: %v, want ErrMemberNotFound", err)
	}
}

// Hash hashes each member's whole state; members that applied the same log
// agree, and a write changes it.
func TestHash(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	c.WaitApplied()
	var hashes []uint32
	hash := func(i int) (*pb.HashResponse, error) {
		return pb.NewMaintenanceClient(c.client(t, i).ActiveConnection()).Hash(ctx, &pb.HashRequest{})
	}
	for i := range c.endpoints {
		h, err := hash(i)
		if err != nil {
			t.Fatal(err)
		}
		if h.Header.MemberId != etcdapi.MemberID(c.ID(i)) || h.Header.Revision != c.Node(i).Status().Revision {
			t.Errorf("member %d: header %v", i, h.Header)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Errorf("members disagree: %v", hashes)
	}
	if _, err := cli.Put(ctx, "k", "w"); err != nil {
		t.Fatal(err)
	}
	if h, err := hash(c.Index(c.WaitLeader())); err != nil || h.Hash == hashes[0] {
		t.Errorf("after a write: %v %v, want another hash than %08x", h, err, hashes[0])
	}
}

// ACTIVATE raises an alarm through raft, as etcd: every member lists it,
// a NOSPACE alarm refuses writes until disarmed; NONE raises nothing, and
// a member ID that names no member nor alarm is ErrMemberNotFound.
func TestAlarmActivate(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	f := c.Followers()[0]
	cli := c.client(t, c.Index(f))
	other := c.client(t, (c.Index(f)+1)%3)
	raw := pb.NewMaintenanceClient(cli.ActiveConnection())
	alarm := &pb.AlarmMember{MemberID: etcdapi.MemberID(c.ID((c.Index(f) + 2) % 3)), Alarm: pb.AlarmType_NOSPACE}

	if got, err := raw.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: alarm.MemberID, Alarm: pb.AlarmType_NONE}); err != nil || len(got.Alarms) != 0 {
		t.Errorf("ACTIVATE NONE: %v %v, want no alarm", got, err)
	}
	if _, err := raw.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: 42, Alarm: pb.AlarmType_NOSPACE}); !errors.Is(rpctypes.Error(err), rpctypes.ErrMemberNotFound) {
		t.Errorf("ACTIVATE for member 42: %v, want ErrMemberNotFound", err)
	}
	checkAlarmList(t, other)

	for range 2 { // raising an active alarm again answers it again
		got, err := raw.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: alarm.MemberID, Alarm: alarm.Alarm})
		if err != nil || len(got.Alarms) != 1 || got.Alarms[0].MemberID != alarm.MemberID || got.Alarms[0].Alarm != alarm.Alarm {
			t.Fatalf("ACTIVATE: %v %v, want %v", got, err, alarm)
		}
	}
	checkAlarmList(t, other, alarm)
	if _, err := other.Put(ctx, "k", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("a put under an activated NOSPACE alarm: %v, want ErrNoSpace", err)
	}
	if _, err := other.AlarmDisarm(ctx, (*clientv3.AlarmMember)(alarm)); err != nil {
		t.Fatal(err)
	}
	checkAlarmList(t, other)
	if _, err := other.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("a put after the disarm: %v", err)
	}
}

// Downgrade answers Unimplemented, with etcd's message style, to every
// action.
func TestDowngradeUnimplemented(t *testing.T) {
	c := newCluster(t, 1)
	cli := c.client(t)
	for _, action := range []clientv3.DowngradeAction{clientv3.DowngradeValidate, clientv3.DowngradeEnable, clientv3.DowngradeCancel} {
		_, err := cli.Downgrade(testContext(t), action, "3.5.0")
		if status.Code(err) != codes.Unimplemented || !strings.HasPrefix(status.Convert(err).Message(), "etcdserver: downgrade is not supported") {
			t.Errorf("Downgrade %v: %v, want Unimplemented", action, err)
		}
	}
}
