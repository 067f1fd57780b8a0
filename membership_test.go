package kvstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

func memberIDs(t *testing.T, n *kvstore.Node) []string {
	t.Helper()
	members, err := n.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range members {
		id := m.ID
		if m.Learner {
			id += "(learner)"
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestAddLearnerPromoteRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		if _, err := c.WaitLeader().Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		f := c.Followers()[0] // membership changes through a follower are forwarded
		i := c.AddNode()
		if err := f.AddLearner(ctx, c.ID(i), c.Address(i)); err != nil {
			t.Fatal(err)
		}
		if got := memberIDs(t, f); !slices.Equal(got, []string{"n1", "n2", "n3", "n4(learner)"}) {
			t.Fatalf("members after AddLearner: %v", got)
		}
		learner := c.Node(i)
		get, err := learner.Get(ctx, []byte("k")) // linearizable on a learner
		if err != nil || len(get.KVs) != 1 {
			t.Fatalf("learner read: %+v %v", get, err)
		}
		if err := f.PromoteLearner(ctx, c.ID(i)); err != nil {
			t.Fatal(err)
		}
		if err := f.PromoteLearner(ctx, c.ID(i)); !errors.Is(err, kvstore.ErrNotLearner) {
			t.Fatalf("promoting a voter: %v", err)
		}
		if err := f.RemoveMember(ctx, f.ID()); err != nil {
			t.Fatal(err)
		}
		c.Stop(c.Index(f))
		leader := c.WaitLeader()
		if got := memberIDs(t, leader); len(got) != 3 || slices.Contains(got, f.ID()) || !slices.Contains(got, "n4") {
			t.Fatalf("members after removing %s: %v", f.ID(), got)
		}
		if _, err := learner.Put(ctx, []byte("k2"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMembershipErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		n := c.Followers()[0]
		before := memberIDs(t, n)
		for _, tc := range []struct {
			name string
			err  error
			want error
		}{
			{"add an existing ID", n.AddVoter(ctx, "n1", "elsewhere"), kvstore.ErrMemberExists},
			{"add an existing address", n.AddLearner(ctx, "n9", c.Address(1)), kvstore.ErrMemberExists},
			{"add without ID", n.AddVoter(ctx, "", "x"), kvstore.ErrInvalidMember},
			{"add without address", n.AddVoter(ctx, "n9", ""), kvstore.ErrInvalidMember},
			{"remove unknown", n.RemoveMember(ctx, "n9"), kvstore.ErrMemberNotFound},
			{"promote unknown", n.PromoteLearner(ctx, "n9"), kvstore.ErrMemberNotFound},
			{"promote a voter", n.PromoteLearner(ctx, "n1"), kvstore.ErrNotLearner},
			{"transfer to unknown", n.TransferLeadership(ctx, "n9"), kvstore.ErrMemberNotFound},
		} {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
			}
		}
		if got := memberIDs(t, n); !slices.Equal(got, before) {
			t.Fatalf("failed changes changed the members: %v", got)
		}
	})
}

func TestTransferLeadershipAndObserveLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx, cancel := context.WithCancel(context.Background())
		old := c.WaitLeader()
		changes := old.ObserveLeader(ctx)
		if first := <-changes; !first.IsLeader || first.LeaderID != old.ID() {
			t.Fatalf("first observation on the leader: %+v", first)
		}
		target := c.Followers()[1]
		if err := c.Followers()[0].TransferLeadership(ctx, target.ID()); err != nil {
			t.Fatal(err)
		}
		for info := range changes {
			if !info.IsLeader && info.LeaderID == target.ID() {
				break
			}
		}
		if got := c.WaitLeader(); got != target {
			t.Fatalf("leader after transfer: %s, want %s", got.ID(), target.ID())
		}
		cancel()
		for range changes { // closed once ctx ends
		}
		if err := target.TransferLeadership(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		for info := range target.ObserveLeader(context.Background()) {
			if info.LeaderID != "" && info.LeaderID != target.ID() {
				break
			}
		}
	})
}

// SEMANTICS.md rule 25: a learner the leader has not seen catch up is not
// promoted (ErrLearnerNotReady, through any member) and stays a learner;
// once it has caught up it is.
func TestPromoteLearnerNotCaughtUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		for i := range 20 {
			if _, err := leader.Put(ctx, []byte("k"), []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		i := c.AddNode()
		c.Isolate(i) // it cannot receive the log
		if err := leader.AddLearner(ctx, c.ID(i), c.Address(i)); err != nil {
			t.Fatal(err)
		}
		f := c.Followers()[0]
		for _, via := range []*kvstore.Node{leader, f} {
			if err := via.PromoteLearner(ctx, c.ID(i)); !errors.Is(err, kvstore.ErrLearnerNotReady) {
				t.Fatalf("promoting the cut-off learner through %s: %v, want ErrLearnerNotReady", via.ID(), err)
			}
		}
		// The leader's view: a follower may not have the learner's entry yet.
		if got := memberIDs(t, leader); !slices.Equal(got, []string{"n1", "n2", "n3", "n4(learner)"}) {
			t.Fatalf("members after the refused promotions: %v", got)
		}

		c.Heal()
		// A linearizable read on the learner returns once it has applied
		// everything committed before it: it has caught up.
		if _, err := c.Node(i).Get(ctx, []byte("k")); err != nil {
			t.Fatal(err)
		}
		if err := f.PromoteLearner(ctx, c.ID(i)); err != nil {
			t.Fatalf("promoting the caught-up learner: %v", err)
		}
		if got := memberIDs(t, f); !slices.Equal(got, []string{"n1", "n2", "n3", "n4"}) {
			t.Fatalf("members after the promotion: %v", got)
		}
	})
}
