package kvstore_test

import (
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/kvtest"
)

// A leader that commits its own removal shuts raft down by itself (raft's
// ShutdownOnRemove); Close must still release its transport, or the
// member cannot come back on the same address (found by the robustness
// suite, seed 1: "transport: address in use").
func TestCloseAfterLeaderRemovedItselfReleasesTheAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.Index(c.WaitLeader())
		if err := c.RemoveAndReAdd(leader); err != nil {
			t.Fatal(err)
		}
		c.WaitLeader()
		c.WaitApplied()
	})
}
