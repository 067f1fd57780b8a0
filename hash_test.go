package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// TestHash: members that applied the same log hash their whole state
// alike; a write changes the hash; a closed node refuses.
func TestHash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		loadCluster(t, leader)
		c.WaitApplied()
		synctest.Wait()
		var first *kvstore.HashResponse
		for _, n := range c.Nodes() {
			h, err := n.Hash()
			if err != nil {
				t.Fatal(err)
			}
			if h.Header.Revision != mustRevision(t, n) || h.Header.MemberID != n.ID() {
				t.Errorf("%s: header %+v", n.ID(), h.Header)
			}
			if first == nil {
				first = h
			} else if h.Hash != first.Hash {
				t.Errorf("%s hashes %08x, %s %08x", n.ID(), h.Hash, first.Header.MemberID, first.Hash)
			}
		}
		mustPut(t, leader, "k/001", "changed")
		if h, err := leader.Hash(); err != nil || h.Hash == first.Hash {
			t.Errorf("after a write: %+v %v, want another hash than %08x", h, err, first.Hash)
		}
		n := c.Node(2)
		c.Stop(2)
		if _, err := n.Hash(); !errors.Is(err, kvstore.ErrClosed) {
			t.Errorf("Hash on a closed node: %v, want ErrClosed", err)
		}
	})
}

// TestRaiseAlarm: an alarm raised on request is the cluster's, as one
// the node raises itself: every member lists it and a NOSPACE alarm
// refuses the writes that add data until it is disarmed. Bad input is
// refused and proposes nothing.
func TestRaiseAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		c.WaitLeader()
		f := c.Followers()[0]
		for _, bad := range []struct {
			member string
			kind   kvstore.AlarmKind
		}{{"", kvstore.AlarmNoSpace}, {"n1", 0}, {"n1", 9}} {
			if err := f.RaiseAlarm(ctx, bad.member, bad.kind); !errors.Is(err, kvstore.ErrInvalidAlarm) {
				t.Errorf("RaiseAlarm(%q, %d): %v, want ErrInvalidAlarm", bad.member, bad.kind, err)
			}
		}
		checkAlarms(t, c.Nodes(), nil)

		if err := f.RaiseAlarm(ctx, "gone", kvstore.AlarmNoSpace); err != nil {
			t.Fatal(err)
		}
		if err := f.RaiseAlarm(ctx, "gone", kvstore.AlarmNoSpace); err != nil {
			t.Fatalf("raising an active alarm again: %v", err)
		}
		c.WaitApplied()
		checkAlarms(t, c.Nodes(), []kvstore.Alarm{{MemberID: "gone", Kind: kvstore.AlarmNoSpace}})
		checkWritesRefused(t, c.Nodes())
		if err := f.DisarmAlarm(ctx, "gone", kvstore.AlarmNoSpace); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		checkAlarms(t, c.Nodes(), nil)
		mustPut(t, f, "after", "disarm")
	})
}
