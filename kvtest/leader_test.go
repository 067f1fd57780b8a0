package kvtest_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// A leader cut off from the majority still believes it leads until its
// lease runs out; WaitLeader, Leader and Followers must not take it for the
// cluster's leader, but wait for the one the majority elects.
func TestWaitLeaderIgnoresCutOffLeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		// cut cuts the leader (member old) off from a majority.
		cut func(c *kvtest.Cluster, old int)
	}{
		{"isolated", 3, func(c *kvtest.Cluster, old int) { c.Isolate(old) }},
		// The leader and one follower still name it in its term and hear
		// each other, but are two of five.
		{"in a minority", 5, func(c *kvtest.Cluster, old int) {
			minority := []int{old, (old + 1) % 5}
			var majority []int
			for i := range 5 {
				if !slices.Contains(minority, i) {
					majority = append(majority, i)
				}
			}
			c.Partition(minority, majority)
		}},
		// The leader hears the others but cannot reach them.
		{"its messages lost", 3, func(c *kvtest.Cluster, old int) {
			for i := range 3 {
				if i != old {
					c.Cut(old, i)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, tc.size)
				old := c.WaitLeader()
				tc.cut(c, c.Index(old))

				next := c.WaitLeader()
				if next == old {
					t.Fatalf("WaitLeader returned %s, the leader that was cut off", old.ID())
				}
				if !next.IsLeader() {
					t.Fatalf("WaitLeader returned %s, which does not lead", next.ID())
				}
				if got := c.WaitLeader(); got != next {
					t.Fatalf("Leader = %s, WaitLeader = %s", got.ID(), next.ID())
				}
				followers := c.Followers()
				if slices.Contains(followers, next) || !slices.Contains(followers, old) || len(followers) != tc.size-1 {
					t.Fatalf("Followers = %v with leader %s and old leader %s", ids(followers), next.ID(), old.ID())
				}
				// The leader WaitLeader names is the one that commits.
				if _, err := next.Put(context.Background(), []byte("k"), []byte("v")); err != nil {
					t.Fatalf("put on %s: %v", next.ID(), err)
				}
				c.Heal()
			})
		})
	}
}

func ids(nodes []*kvstore.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID())
	}
	return out
}
