package kvtest_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

func TestClusterWriteStopRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		followers := c.Followers()
		for i := range 10 {
			if _, err := followers[i%2].Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		stopped := c.Index(followers[0])
		c.Stop(stopped)
		if _, err := c.WaitLeader().Put(ctx, []byte("while-stopped"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		n := c.Restart(stopped)
		get, err := n.Get(ctx, []byte(""), kvstore.WithFromKey(), kvstore.WithCountOnly())
		if err != nil || get.Count != 11 {
			t.Fatalf("restarted node reads %+v, %v", get, err)
		}
	})
}

func TestClusterOnDisk(t *testing.T) {
	c := kvtest.NewCluster(t, 3, kvtest.WithDisk(kvstore.LogStoreWAL))
	ctx := context.Background()
	if _, err := c.WaitLeader().Put(ctx, []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	c.Restart(0)
	c.WaitApplied()
}

// Clusters of parallel tests do not confuse each other's leak checks: each
// checks only the goroutines carrying its own label.
func TestParallelClusters(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			c := kvtest.NewCluster(t, 3)
			if _, err := c.WaitLeader().Put(context.Background(), []byte("k"), []byte("v")); err != nil {
				t.Fatal(err)
			}
			c.WaitApplied()
		})
	}
}
