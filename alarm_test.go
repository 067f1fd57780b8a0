package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// testQuota is the quota of the alarm tests: a few dozen 512-byte puts.
const testQuota = 16 << 10

// fillToQuota puts 512-byte values through n until the quota refuses one,
// and returns that error.
func fillToQuota(t *testing.T, n *kvstore.Node) error {
	t.Helper()
	value := []byte(strings.Repeat("v", 512))
	for i := range 1000 {
		if _, err := n.Put(context.Background(), []byte(fmt.Sprint("fill/", i)), value); err != nil {
			return err
		}
	}
	t.Fatal("1000 puts of 512 bytes fitted in the quota")
	return nil
}

// checkAlarms fails unless every node in nodes lists exactly want, both in
// Alarms and in Status.
func checkAlarms(t *testing.T, nodes []*kvstore.Node, want []kvstore.Alarm) {
	t.Helper()
	for _, n := range nodes {
		got, err := n.Alarms(context.Background())
		if err != nil {
			t.Fatalf("%s: Alarms: %v", n.ID(), err)
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("%s: alarms %v, want %v", n.ID(), got, want)
		}
		if st := n.Status(); len(st.Alarms) != len(want) || (len(want) > 0 && !reflect.DeepEqual(st.Alarms, want)) {
			t.Fatalf("%s: Status alarms %v, want %v", n.ID(), st.Alarms, want)
		}
	}
}

// checkWritesRefused fails unless each way of adding data through each
// node is refused with ErrDatabaseSpaceExceeded.
func checkWritesRefused(t *testing.T, nodes []*kvstore.Node) {
	t.Helper()
	ctx := context.Background()
	for _, n := range nodes {
		writes := map[string]func() error{
			"put": func() error { _, err := n.Put(ctx, []byte("new"), []byte("x")); return err },
			"txn with a put": func() error {
				_, err := n.Txn(ctx).Else(kvstore.OpPut([]byte("new"), []byte("x"))).Commit()
				return err
			},
			"grant": func() error { _, err := n.Grant(ctx, 60); return err },
		}
		for name, write := range writes {
			err := write()
			if !errors.Is(err, kvstore.ErrDatabaseSpaceExceeded) || !errors.Is(err, kvstore.ErrNoSpace) {
				t.Fatalf("%s through %s: %v, want ErrDatabaseSpaceExceeded", name, n.ID(), err)
			}
		}
	}
}

// A store filled to its quota raises a NOSPACE alarm through raft: every
// member then refuses the writes that add data, while reads, deletes,
// compaction, revokes and membership operations go on; compacting and
// disarming lets writes in again.
func TestQuotaRaisesNoSpaceAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithQuotaBytes(testQuota)))
		ctx := context.Background()
		leader := c.WaitLeader()
		nodes := c.Nodes()
		lease, err := leader.Grant(ctx, 600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Put(ctx, []byte("leased"), []byte("x"), kvstore.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
		checkAlarms(t, nodes, nil)

		f := c.Followers()[0]
		err = fillToQuota(t, f)
		if !errors.Is(err, kvstore.ErrDatabaseSpaceExceeded) || !errors.Is(err, kvstore.ErrNoSpace) {
			t.Fatalf("the write past the quota: %v, want ErrDatabaseSpaceExceeded", err)
		}
		if st := f.Status(); st.StoreSize > testQuota || st.QuotaBytes != testQuota {
			t.Fatalf("status after filling: size %d, quota %d", st.StoreSize, st.QuotaBytes)
		}
		raised := []kvstore.Alarm{{MemberID: f.ID(), Kind: kvstore.AlarmNoSpace}}
		checkAlarms(t, nodes, raised)
		checkWritesRefused(t, nodes)
		// Every member reports itself not ready while the alarm stands,
		// naming the member that raised it.
		for _, n := range nodes {
			err := n.Ready(ctx)
			if !errors.Is(err, kvstore.ErrNotReady) || !strings.Contains(err.Error(), "no_space") || !strings.Contains(err.Error(), f.ID()) {
				t.Fatalf("%s ready under a NOSPACE alarm: %v", n.ID(), err)
			}
		}

		// What does not add data goes on, through every member.
		for _, n := range nodes {
			if get, err := n.Get(ctx, []byte("fill/"), kvstore.WithPrefix(), kvstore.WithCountOnly()); err != nil || get.Count == 0 {
				t.Fatalf("read through %s: %+v %v", n.ID(), get, err)
			}
			if _, err := n.Txn(ctx).Then(kvstore.OpGet([]byte("leased"))).Commit(); err != nil {
				t.Fatalf("read-only txn through %s: %v", n.ID(), err)
			}
		}
		if _, err := nodes[0].Delete(ctx, []byte("fill/1"), kvstore.WithPrefix()); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := nodes[1].Txn(ctx).Then(kvstore.OpDelete([]byte("fill/"), kvstore.WithPrefix())).Commit(); err != nil {
			t.Fatalf("txn of deletes: %v", err)
		}
		revoke, err := nodes[2].Revoke(ctx, lease.ID)
		if err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if err := c.TransferLeader(c.Index(f)); err != nil {
			t.Fatalf("leadership transfer: %v", err)
		}
		c.WaitApplied()
		before := f.Status().StoreSize
		if _, err := f.Compact(ctx, revoke.Header.Revision, kvstore.WithCompactPhysical()); err != nil {
			t.Fatalf("compact: %v", err)
		}
		if after := f.Status().StoreSize; after >= before/10 {
			t.Fatalf("store size %d after deleting everything and compacting, %d before", after, before)
		}
		// Compaction alone does not clear the alarm (etcd's behaviour).
		checkWritesRefused(t, nodes[:1])

		if err := nodes[2].DisarmAlarm(ctx, f.ID(), kvstore.AlarmNoSpace); err != nil {
			t.Fatalf("disarm: %v", err)
		}
		checkAlarms(t, c.Nodes(), nil)
		for _, n := range c.Nodes() {
			if err := n.Ready(ctx); err != nil {
				t.Fatalf("%s not ready after the disarm: %v", n.ID(), err)
			}
		}
		for i, n := range c.Nodes() {
			if _, err := n.Put(ctx, []byte(fmt.Sprint("after/", i)), []byte("x")); err != nil {
				t.Fatalf("put through %s after the disarm: %v", n.ID(), err)
			}
			if _, err := n.Grant(ctx, 60); err != nil {
				t.Fatalf("grant through %s after the disarm: %v", n.ID(), err)
			}
		}
	})
}

// DisarmAlarm refuses a request naming no member or no known kind, and
// proposes nothing.
func TestDisarmAlarmBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		n := c.WaitLeader()
		ctx := context.Background()
		applied := n.Status().AppliedIndex
		for _, tc := range []struct {
			member string
			kind   kvstore.AlarmKind
		}{{"", kvstore.AlarmNoSpace}, {strings.Repeat("n", 1<<16), kvstore.AlarmNoSpace}, {"n1", 0}, {"n1", 9}} {
			if err := n.DisarmAlarm(ctx, tc.member, tc.kind); !errors.Is(err, kvstore.ErrInvalidAlarm) {
				t.Fatalf("DisarmAlarm(%.10q, %d): %v, want ErrInvalidAlarm", tc.member, tc.kind, err)
			}
		}
		if got := n.Status().AppliedIndex; got != applied {
			t.Fatalf("a refused disarm was proposed: applied %d, was %d", got, applied)
		}
		if _, err := kvstore.ParseAlarmKind("bogus"); !errors.Is(err, kvstore.ErrInvalidAlarm) {
			t.Fatalf("ParseAlarmKind(bogus): %v", err)
		}
		if k, err := kvstore.ParseAlarmKind("nospace"); err != nil || k != kvstore.AlarmNoSpace {
			t.Fatalf("ParseAlarmKind(nospace): %v %v", k, err)
		}
	})
}

// A disarm while the store is still over the disarming member's quota
// raises the alarm again at once.
func TestDisarmWhileOverQuotaReRaises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3) // the default quota
		ctx := context.Background()
		leader := c.WaitLeader()
		value := []byte(strings.Repeat("v", 512))
		for i := range 64 { // 32 KiB and more: twice testQuota
			if _, err := leader.Put(ctx, []byte(fmt.Sprint("k", i)), value); err != nil {
				t.Fatal(err)
			}
		}
		// A member with a small quota joins: the store is past its quota.
		small := c.Node(c.AddNode(kvstore.WithQuotaBytes(testQuota)))
		if err := leader.AddLearner(ctx, small.ID(), c.Address(c.Index(small))); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		if _, err := small.Put(ctx, []byte("one more"), []byte("x")); !errors.Is(err, kvstore.ErrDatabaseSpaceExceeded) {
			t.Fatalf("put through the small member: %v", err)
		}
		raised := []kvstore.Alarm{{MemberID: small.ID(), Kind: kvstore.AlarmNoSpace}}
		checkAlarms(t, c.Nodes(), raised)
		if err := small.DisarmAlarm(ctx, small.ID(), kvstore.AlarmNoSpace); !errors.Is(err, kvstore.ErrDatabaseSpaceExceeded) {
			t.Fatalf("disarm while over quota: %v, want ErrDatabaseSpaceExceeded", err)
		}
		checkAlarms(t, c.Nodes(), raised)
		checkWritesRefused(t, c.Nodes())

		// Deleted and compacted below the quota, the disarm holds.
		del, err := leader.Delete(ctx, []byte("k"), kvstore.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := small.Compact(ctx, del.Header.Revision, kvstore.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		if err := small.DisarmAlarm(ctx, small.ID(), kvstore.AlarmNoSpace); err != nil {
			t.Fatalf("disarm below the quota: %v", err)
		}
		checkAlarms(t, c.Nodes(), nil)
		if _, err := small.Put(ctx, []byte("one more"), []byte("x")); err != nil {
			t.Fatalf("put after the disarm: %v", err)
		}
	})
}

// An alarm is part of the replicated state: a member restarted from its
// log, and one that catches up from the leader's snapshot, both hold it.
func TestAlarmSurvivesRestartAndSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		installs := &messageCounter{msg: "Installed remote snapshot"}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithQuotaBytes(testQuota),
			kvstore.WithLogger(slog.New(installs)), kvstore.WithTrailingLogs(4)))
		leader := c.WaitLeader()
		followers := c.Followers()
		lagging, restarted := c.Index(followers[0]), c.Index(followers[1])
		c.Stop(lagging)
		if err := fillToQuota(t, leader); !errors.Is(err, kvstore.ErrDatabaseSpaceExceeded) {
			t.Fatalf("filling: %v", err)
		}
		raised := []kvstore.Alarm{{MemberID: leader.ID(), Kind: kvstore.AlarmNoSpace}}
		for i := range 20 { // entries past the snapshot, beyond the trailing logs
			if _, err := leader.Delete(context.Background(), []byte(fmt.Sprint("fill/", i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Snapshot(c.Index(leader)); err != nil {
			t.Fatal(err)
		}
		c.Stop(restarted)
		c.Restart(restarted)
		c.Restart(lagging)
		c.WaitApplied()
		for deadline := time.Now().Add(time.Second); installs.count.Load() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the lagging member caught up without a snapshot")
			}
		}
		checkAlarms(t, c.Nodes(), raised)
		checkWritesRefused(t, []*kvstore.Node{c.Node(lagging), c.Node(restarted)})
	})
}

// On disk, an alarm outlives a restart of the whole cluster: it is in the
// log and in the snapshot the nodes restart from.
func TestAlarmSurvivesClusterRestartOnDisk(t *testing.T) {
	c := kvtest.NewCluster(t, 3, kvtest.WithDisk(kvstore.LogStoreWAL), kvtest.WithNodeOptions(kvstore.WithQuotaBytes(testQuota)))
	leader := c.WaitLeader()
	if err := fillToQuota(t, leader); !errors.Is(err, kvstore.ErrDatabaseSpaceExceeded) {
		t.Fatalf("filling: %v", err)
	}
	raised := []kvstore.Alarm{{MemberID: leader.ID(), Kind: kvstore.AlarmNoSpace}}
	c.WaitApplied()
	for i := range 3 {
		if err := c.Snapshot(i); err != nil {
			t.Fatal(err)
		}
		c.Stop(i)
	}
	for i := range 3 {
		c.Restart(i)
	}
	c.WaitLeader()
	checkAlarms(t, c.Nodes(), raised)
	checkWritesRefused(t, c.Nodes())
}
