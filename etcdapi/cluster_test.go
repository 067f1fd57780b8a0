package etcdapi_test

import (
	"testing"

	"github.com/kvstore/kvstore/etcdapi"
)

func TestMemberListAndStatus(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)

	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Members) != 3 {
		t.Fatalf("members %+v", list.Members)
	}
	for i, m := range list.Members {
		if m.ID != etcdapi.MemberID(m.Name) || m.Name != c.ID(i) || m.PeerURLs[0] != c.Address(i) || m.IsLearner {
			t.Errorf("member %d: %+v", i, m)
		}
		// A member knows only its own client URLs.
		answering := m.ID == list.Header.MemberId
		if answering && (len(m.ClientURLs) != 1 || m.ClientURLs[0] != "http://"+c.endpoints[i]) || !answering && len(m.ClientURLs) != 0 {
			t.Errorf("member %d (answering: %v): client URLs %v", i, answering, m.ClientURLs)
		}
	}

	leaderID := etcdapi.MemberID(c.WaitLeader().ID())
	put, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitApplied()
	for i, ep := range c.endpoints {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		if st.Header.MemberId != etcdapi.MemberID(c.ID(i)) || st.Leader != leaderID || st.Header.Revision < put.Header.Revision ||
			st.Version == "" || st.RaftTerm == 0 || st.RaftIndex == 0 || st.RaftAppliedIndex == 0 || st.DbSize <= 0 || st.IsLearner {
			t.Errorf("status of %s: %+v", c.ID(i), st)
		}
	}
	if list.Header.ClusterId != etcdapi.ClusterID("kvstore") {
		t.Errorf("cluster ID %d", list.Header.ClusterId)
	}
}

func TestIDs(t *testing.T) {
	if etcdapi.MemberID("n1") == etcdapi.MemberID("n2") || etcdapi.MemberID("n1") != etcdapi.MemberID("n1") || etcdapi.MemberID("") == 0 {
		t.Error("member IDs are not distinct, stable and non-zero")
	}
}
