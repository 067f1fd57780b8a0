package kvtest

import (
	"testing"
	"testing/synctest"
)

// A leader whose voters are stopped is no leader, even in the moment it
// still believes it leads: a majority of its configuration's voters must
// acknowledge it, not a majority of the members still running.
func TestLeaderNeedsMajorityOfVoters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCluster(t, 3)
		old := c.WaitLeader()
		for _, f := range c.Followers() {
			c.Stop(c.Index(f))
		}
		if !old.IsLeader() {
			t.Fatalf("%s stepped down while its followers stopped: the test needs it to still believe it leads", old.ID())
		}
		if got := c.leader(); got != nil {
			t.Fatalf("leader() = %s with two of three voters stopped", got.ID())
		}
	})
}
