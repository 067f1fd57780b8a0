package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/kvtest"
)

// Linearizable reads that share one context (their read rounds group them,
// TestReadBatcherWaitEndsWithTheContext) all end when it does, with no time
// passing, on a follower cut off from its leader, where no round succeeds:
// whether a reader is then waiting for a round or between two.
func TestLinearizableReadsOfOneContextEndWithIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		if _, err := leader.Put(context.Background(), []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		f := c.Followers()[0]
		c.Isolate(c.Index(f))
		ctx, cancel := context.WithCancel(context.Background())
		const readers = 8
		errs := make(chan error, readers)
		for range readers {
			go func() {
				_, err := f.Get(ctx, []byte("k"))
				errs <- err
			}()
		}
		time.Sleep(time.Second)
		select {
		case err := <-errs:
			t.Fatalf("a read on the cut-off follower returned before its context ended: %v", err)
		default:
		}
		cancel()
		at := time.Now()
		for range readers {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Fatalf("read: %v, want context.Canceled", err)
			}
		}
		if d := time.Since(at); d != 0 {
			t.Fatalf("the reads took %v to end after their context", d)
		}
		c.Heal()
	})
}
