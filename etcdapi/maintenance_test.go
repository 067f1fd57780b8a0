package etcdapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kvstore/kvstore/etcdapi"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
	if err := leader.AddLearner(ctx, c.ID(learner), c.Address(learner)); err != nil {
		t.Fatal(err)
	}
	list, err := cli.MemberList(ctx)
	if err != nil || len(list.Members) != 4 || !list.Members[3].IsLearner {
		t.Fatalf("with a learner: %+v %v", list, err)
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
