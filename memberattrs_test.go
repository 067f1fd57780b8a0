package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// waitMembers polls n's Members until want accepts them, within
// kvtest.Timeout (virtual inside a synctest bubble).
func waitMembers(t *testing.T, n *kvstore.Node, what string, want func([]kvstore.Member) bool) []kvstore.Member {
	t.Helper()
	deadline := time.Now().Add(kvtest.Timeout)
	for {
		members, err := n.Members(context.Background())
		if err == nil && want(members) {
			return members
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never holds: members %+v, err %v", n.ID(), what, members, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func memberByID(members []kvstore.Member, id string) (kvstore.Member, bool) {
	i := slices.IndexFunc(members, func(m kvstore.Member) bool { return m.ID == id })
	if i < 0 {
		return kvstore.Member{}, false
	}
	return members[i], true
}

// Every member publishes its name and client URLs through raft, so that
// every member's Members lists them all; a restart with other URLs
// publishes those; a member added but not started, or started without
// attributes, is listed with none.
func TestMembersListPublishedAttributes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		port := map[string]int{"n1": 2379}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptionsByID(func(id string) []kvstore.Option {
			if id == "n4" {
				return nil // starts without attributes
			}
			return []kvstore.Option{
				kvstore.WithMemberName("name-" + id),
				kvstore.WithClientURLs(fmt.Sprintf("http://%s:%d", id, port[id]), "http://"+id+":9999"),
			}
		}))
		c.WaitLeader()
		published := func(id string, port int) func([]kvstore.Member) bool {
			return func(members []kvstore.Member) bool {
				m, ok := memberByID(members, id)
				return ok && m.Name == "name-"+id && slices.Equal(m.ClientURLs, []string{fmt.Sprintf("http://%s:%d", id, port), "http://" + id + ":9999"})
			}
		}
		for _, n := range c.Nodes() {
			for _, id := range []string{"n1", "n2", "n3"} {
				waitMembers(t, n, id+"'s attributes", published(id, port[id]))
			}
		}

		c.Stop(0)
		port["n1"] = 3379
		c.Restart(0)
		for _, n := range c.Nodes() {
			waitMembers(t, n, "n1's new client URL", published("n1", 3379))
		}

		// n4 is added as a voter before it starts: listed without a name
		// (etcdctl's "unstarted"), and still without one once it runs,
		// since it publishes nothing.
		ctx := context.Background()
		leader := c.WaitLeader()
		if err := leader.AddLearner(ctx, "n4", "n4"); err != nil {
			t.Fatal(err)
		}
		members, err := leader.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := memberByID(members, "n4"); !ok || m.Name != "" || m.ClientURLs != nil {
			t.Fatalf("unstarted n4 listed as %+v (%v)", m, ok)
		}
		i := c.AddNode()
		c.WaitApplied()
		m, _ := memberByID(waitMembers(t, c.Node(i), "n4 in its own list", func(ms []kvstore.Member) bool {
			_, ok := memberByID(ms, "n1")
			return ok
		}), "n4")
		if m.Name != "" || m.ClientURLs != nil {
			t.Fatalf("n4, which publishes nothing, listed as %+v", m)
		}
		if m, _ := memberByID(waitMembers(t, c.Node(i), "n2's attributes on n4", published("n2", 0)), "n2"); m.Name != "name-n2" {
			t.Fatalf("n4 lists n2 as %+v", m)
		}
	})
}

// A member that is removed takes its attributes with it: added again
// under the same ID, it is listed without them until it publishes again.
func TestMemberAttributesGoWithTheMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptionsByID(func(id string) []kvstore.Option {
			return []kvstore.Option{kvstore.WithMemberName("name-" + id)}
		}))
		leader := c.WaitLeader()
		ctx := context.Background()
		gone := c.Followers()[0]
		goneID := gone.ID()
		waitMembers(t, leader, goneID+"'s name", func(ms []kvstore.Member) bool {
			m, _ := memberByID(ms, goneID)
			return m.Name == "name-"+goneID
		})
		if err := leader.RemoveMember(ctx, goneID); err != nil {
			t.Fatal(err)
		}
		i := c.Index(gone)
		select {
		case <-gone.Removed():
		case <-time.After(kvtest.Timeout):
			t.Fatal("the removed member never learned it was removed")
		}
		c.Stop(i)
		if err := leader.AddLearner(ctx, goneID, c.Address(i)); err != nil {
			t.Fatal(err)
		}
		members, err := leader.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := memberByID(members, goneID); !ok || m.Name != "" {
			t.Fatalf("%s added again lists as %+v (%v), want no name", goneID, m, ok)
		}
		if err := leader.RemoveMember(ctx, goneID); err != nil && !errors.Is(err, kvstore.ErrMemberNotFound) {
			t.Fatal(err)
		}
	})
}

// A member restarted without attributes after it had published some
// withdraws them: Members lists it with none, not with client URLs it no
// longer serves (a client that syncs its endpoints from the member list
// would dial them).
func TestMemberAttributesWithdrawnOnRestartWithout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		withAttrs := true
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptionsByID(func(id string) []kvstore.Option {
			if id == "n1" && !withAttrs {
				return nil
			}
			return []kvstore.Option{kvstore.WithMemberName("name-" + id), kvstore.WithClientURLs("http://" + id + ":2379")}
		}))
		c.WaitLeader()
		// Every member's attributes are applied everywhere before n1 stops:
		// its withdrawal, logged after them, is then applied after them on
		// every node, so the check of n2's below is not racing n2's own
		// publication.
		for _, n := range c.Nodes() {
			waitMembers(t, n, "every member's attributes", func(ms []kvstore.Member) bool {
				for _, id := range []string{"n1", "n2", "n3"} {
					if m, _ := memberByID(ms, id); m.Name != "name-"+id {
						return false
					}
				}
				return true
			})
		}
		c.Stop(0)
		withAttrs = false
		c.Restart(0)
		for _, n := range c.Nodes() {
			waitMembers(t, n, "n1's attributes withdrawn", func(ms []kvstore.Member) bool {
				m, ok := memberByID(ms, "n1")
				return ok && m.Name == "" && len(m.ClientURLs) == 0
			})
		}
		if m, _ := memberByID(waitMembers(t, c.Node(0), "n2 listed", func(ms []kvstore.Member) bool {
			_, ok := memberByID(ms, "n2")
			return ok
		}), "n2"); m.Name != "name-n2" {
			t.Fatalf("n2 lost its attributes: %+v", m)
		}
	})
}
