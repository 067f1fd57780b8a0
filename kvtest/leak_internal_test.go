package kvtest

import (
	"strings"
	"testing"
	"testing/synctest"
)

// TestLeakCheckSeesClusterGoroutines makes sure the leak check can fail:
// while the cluster runs, its goroutines carry the cluster's label.
func TestLeakCheckSeesClusterGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCluster(t, 1)
		c.WaitLeader()
		if stacks := c.labelledGoroutines(); !strings.Contains(stacks, "hashicorp/raft") {
			t.Fatalf("no raft goroutine carries the cluster label:\n%s", stacks)
		}
	})
}
