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
	const quota = 8 << 10
	c := newCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithQuotaBytes(quota)))
	ctx := testContext(t)
	f := c.Followers()[0]
	cli := c.client(t, c.Index(f))
	other := c.client(t, (c.Index(f)+1)%3)
	raw := pb.NewMaintenanceClient(other.ActiveConnection())

	if list, err := cli.AlarmList(ctx); err != nil || len(list.Alarms) != 0 {
		t.Fatalf("alarms before filling: %+v %v", list, err)
	}
	// A write is admitted while the store's size plus the write's log
	// entry stays below the quota, and the store charges every key and
	// version a fixed overhead beyond its bytes: a Txn of 100 puts of
	// one-byte values is a small entry that takes the store past the
	// quota, so the disarm below finds it over.
	var puts []clientv3.Op
	for i := range 100 {
		puts = append(puts, clientv3.OpPut(fmt.Sprintf("fill/%03d", i), "v"))
	}
	if _, err := cli.Txn(ctx).Then(puts...).Commit(); err != nil {
		t.Fatalf("the filling txn: %v", err)
	}
	if st, err := cli.Status(ctx, cli.Endpoints()[0]); err != nil || st.DbSize <= quota {
		t.Fatalf("after the filling txn: status %+v %v, want a db size over the quota %d", st, err, quota)
	}
	if _, err := cli.Put(ctx, "fill/last", strings.Repeat("v", 512)); !errors.Is(err, rpctypes.ErrNoSpace) {
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

	// A delete at exactly the compact revision survives that compaction
	// (SEMANTICS.md rule 17): delete all but one key, then that one, and
	// compact at the last delete, so that only one tombstone stays.
	if _, err := cli.Delete(ctx, "fill/000", clientv3.WithRange("fill/099")); err != nil {
		t.Fatal(err)
	}
	del, err := cli.Delete(ctx, "fill/099")
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
