package etcdapi_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/kvtest"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A write past the quota fails with rpctypes.ErrNoSpace, AlarmList shows
// the NOSPACE alarm of the member that served it, AlarmDisarm clears it
// once a compaction has freed the space (and not before), and writes go
// on.
func TestAlarmNoSpace(t *testing.T) {
	c := newCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithQuotaBytes(16<<10)))
	ctx := testContext(t)
	f := c.Followers()[0]
	cli := c.client(t, c.Index(f))
	other := c.client(t, (c.Index(f)+1)%3)
	raw := pb.NewMaintenanceClient(other.ActiveConnection())

	if list, err := cli.AlarmList(ctx); err != nil || len(list.Alarms) != 0 {
		t.Fatalf("alarms before filling: %+v %v", list, err)
	}
	var err error
	value := strings.Repeat("v", 512)
	for i := 0; err == nil; i++ {
		if i == 1000 {
			t.Fatal("1000 puts of 512 bytes fitted in the quota")
		}
		_, err = cli.Put(ctx, fmt.Sprint("fill/", i), value)
	}
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("the put past the quota: %v, want rpctypes.ErrNoSpace", err)
	}
	raised := &pb.AlarmMember{MemberID: etcdapi.MemberID(f.ID()), Alarm: pb.AlarmType_NOSPACE}
	checkAlarmList(t, other, raised)
	if _, err := other.Put(ctx, "k", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("a put through another member under the alarm: %v, want rpctypes.ErrNoSpace", err)
	}

	// GET filters by type; DEACTIVATE names one member's alarm of one
	// type, and answers none when that is not active.
	if got, err := raw.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_GET, Alarm: pb.AlarmType_CORRUPT}); err != nil || len(got.Alarms) != 0 {
		t.Errorf("GET CORRUPT: %+v %v, want none", got, err)
	}
	if got, err := raw.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_GET, Alarm: pb.AlarmType_NOSPACE}); err != nil || len(got.Alarms) != 1 {
		t.Errorf("GET NOSPACE: %+v %v, want one", got, err)
	}
	for _, r := range []*pb.AlarmRequest{
		{Action: pb.AlarmRequest_DEACTIVATE, MemberID: 0, Alarm: pb.AlarmType_NOSPACE},
		{Action: pb.AlarmRequest_DEACTIVATE, MemberID: raised.MemberID, Alarm: pb.AlarmType_CORRUPT},
		{Action: pb.AlarmRequest_DEACTIVATE, MemberID: raised.MemberID, Alarm: pb.AlarmType_NONE},
	} {
		if got, err := raw.Alarm(ctx, r); err != nil || len(got.Alarms) != 0 {
			t.Errorf("%v: %+v %v, want no alarm cleared", r, got, err)
		}
	}
	checkAlarmList(t, other, raised)

	// Disarming while the store is still over the quota raises the alarm
	// again at once.
	if _, err := cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(raised)); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("disarm before compacting: %v, want rpctypes.ErrNoSpace", err)
	}
	checkAlarmList(t, other, raised)

	del, err := cli.Delete(ctx, "fill/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	disarmed, err := other.AlarmDisarm(ctx, (*clientv3.AlarmMember)(raised))
	if err != nil {
		t.Fatalf("disarm after compacting: %v", err)
	}
	if len(disarmed.Alarms) != 1 || disarmed.Alarms[0].MemberID != raised.MemberID || disarmed.Alarms[0].Alarm != raised.Alarm {
		t.Errorf("disarm answered %+v, want %+v", disarmed.Alarms, raised)
	}
	checkAlarmList(t, other)
	// Right after the disarm, through either member: one that has not
	// applied it yet catches up before deciding (kvstore's quota.go).
	for _, cl := range []*clientv3.Client{cli, other} {
		if _, err := cl.Put(ctx, "after", "x"); err != nil {
			t.Fatalf("put through %s after the disarm: %v", cl.Endpoints(), err)
		}
	}
}

// checkAlarmList fails unless cli's AlarmList is exactly want.
func checkAlarmList(t *testing.T, cli *clientv3.Client, want ...*pb.AlarmMember) {
	t.Helper()
	list, err := cli.AlarmList(testContext(t))
	if err != nil {
		t.Fatalf("AlarmList: %v", err)
	}
	same := func(a, b *pb.AlarmMember) bool { return a.MemberID == b.MemberID && a.Alarm == b.Alarm }
	if !slices.EqualFunc(list.Alarms, want, same) {
		t.Fatalf("AlarmList: %v, want %v", list.Alarms, want)
	}
}
