package concurrency_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/concurrency"
	"github.com/kvstore/kvstore/kvtest"
)

// A session keeps its lease alive far past its TTL, through leader changes,
// and Close revokes it.
func TestSessionOutlivesTTLAndLeaderChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		follower := c.Followers()[0]
		s := newSession(t, follower, concurrency.WithTTL(2))
		if s.TTL() != 2 {
			t.Fatalf("TTL %d, want 2", s.TTL())
		}
		for i := range 4 {
			time.Sleep(3 * time.Second)
			// Hand leadership to another member each round; the session's
			// member leads in some of them.
			if err := c.TransferLeader((c.Index(c.WaitLeader()) + 1) % 3); err != nil {
				t.Fatalf("round %d: transfer: %v", i, err)
			}
			if isClosed(s.Done()) {
				t.Fatalf("round %d: session ended: %v", i, s.Err())
			}
		}
		if !leaseAlive(t, c.WaitLeader(), s.Lease()) {
			t.Fatal("the lease expired under a live session")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if !isClosed(s.Done()) || !errors.Is(s.Err(), concurrency.ErrSessionClosed) {
			t.Fatalf("after Close: done %v, err %v", isClosed(s.Done()), s.Err())
		}
		if leaseAlive(t, follower, s.Lease()) {
			t.Fatal("Close did not revoke the lease")
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// The leader's member stopping does not end a session made through
// another member: the new leader takes the lease over.
func TestSessionSurvivesLeaderCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		s := newSession(t, c.Followers()[0], concurrency.WithTTL(2))
		time.Sleep(time.Second)
		stopped := c.Index(leader)
		c.Stop(stopped)
		time.Sleep(10 * time.Second)
		if isClosed(s.Done()) {
			t.Fatalf("session ended after the leader crashed: %v", s.Err())
		}
		c.Restart(stopped)
	})
}

// The session's context ends it as Close does.
func TestSessionEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		node := c.Followers()[0]
		ctx, cancel := context.WithCancel(context.Background())
		s, err := concurrency.NewSession(ctx, node, concurrency.WithTTL(5))
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if !closedWithin(s.Done(), time.Second) {
			t.Fatal("session outlived its context")
		}
		if !errors.Is(s.Err(), concurrency.ErrSessionClosed) || !errors.Is(s.Err(), context.Canceled) {
			t.Fatalf("Err %v", s.Err())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if leaseAlive(t, node, s.Lease()) {
			t.Fatal("the lease outlived the session's context")
		}
	})
}

// A revoked lease ends the session at its next renewal at the latest.
func TestSessionLostWhenRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		s := newSession(t, c.Followers()[0], concurrency.WithTTL(3))
		if _, err := c.WaitLeader().Revoke(context.Background(), s.Lease()); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(s.Done(), 2*time.Second) {
			t.Fatal("session did not notice its lease was revoked")
		}
		if !errors.Is(s.Err(), concurrency.ErrSessionExpired) || !errors.Is(s.Err(), kvstore.ErrLeaseNotFound) {
			t.Fatalf("Err %v", s.Err())
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close of a lost session: %v", err)
		}
	})
}

// A session on a member cut off from the others ends by its own clock,
// no later than the lease expires in the cluster.
func TestSessionLostWhenIsolated(t *testing.T) {
	for _, onLeader := range []bool{false, true} {
		name := map[bool]string{false: "follower", true: "leader"}[onLeader]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, 3)
				node := c.Followers()[0]
				if onLeader {
					node = c.WaitLeader()
				}
				s := newSession(t, node, concurrency.WithTTL(2))
				time.Sleep(time.Second)
				c.Isolate(c.Index(node))
				start := time.Now()
				var other *kvstore.Node
				for _, n := range c.Nodes() {
					if n != node {
						other = n
					}
				}
				// Until the session knows it is lost, the cluster must
				// still hold its lease.
				for !isClosed(s.Done()) {
					if !leaseAlive(t, other, s.Lease()) && !isClosed(s.Done()) {
						t.Fatal("the lease expired in the cluster before the isolated session noticed")
					}
					if time.Since(start) > 10*time.Second {
						t.Fatal("the isolated session never ended")
					}
					time.Sleep(50 * time.Millisecond)
				}
				if !errors.Is(s.Err(), concurrency.ErrSessionExpired) {
					t.Fatalf("Err %v", s.Err())
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("the session ended %v after isolation, later than its TTL", d)
				}
				c.Heal()
			})
		})
	}
}

// A session ends at once when its node closes, and when its node is removed.
func TestSessionLostWithItsNode(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := kvtest.NewCluster(t, 3)
			node := c.Followers()[0]
			s := newSession(t, node, concurrency.WithTTL(30))
			stopped := c.Index(node)
			c.Stop(stopped)
			if !closedWithin(s.Done(), 100*time.Millisecond) {
				t.Fatal("session outlived its node")
			}
			if !errors.Is(s.Err(), concurrency.ErrSessionExpired) || !errors.Is(s.Err(), kvstore.ErrClosed) {
				t.Fatalf("Err %v", s.Err())
			}
			c.Restart(stopped)
		})
	})
	t.Run("removed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := kvtest.NewCluster(t, 3)
			leader := c.WaitLeader()
			node := c.Followers()[0]
			s := newSession(t, node, concurrency.WithTTL(30))
			if err := leader.RemoveMember(context.Background(), node.ID()); err != nil {
				t.Fatal(err)
			}
			if !closedWithin(s.Done(), 5*time.Second) {
				t.Fatal("session outlived its node's removal")
			}
			if !errors.Is(s.Err(), concurrency.ErrSessionExpired) || !errors.Is(s.Err(), kvstore.ErrRemoved) {
				t.Fatalf("Err %v", s.Err())
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := leader.Revoke(context.Background(), s.Lease()); err != nil {
				t.Fatal(err) // the cluster still has it: nobody could revoke it
			}
			c.Stop(c.Index(node))
		})
	})
}

// Bad input is refused before anything is granted.
func TestSessionBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		node := c.WaitLeader()
		ctx := context.Background()
		if _, err := concurrency.NewSession(ctx, nil); !errors.Is(err, concurrency.ErrNilNode) {
			t.Fatalf("nil node: %v", err)
		}
		for _, ttl := range []int64{0, -1} {
			if _, err := concurrency.NewSession(ctx, node, concurrency.WithTTL(ttl)); !errors.Is(err, concurrency.ErrInvalidTTL) {
				t.Fatalf("TTL %d: %v", ttl, err)
			}
		}
		if _, err := concurrency.NewSession(ctx, node, concurrency.WithTTL(1<<40)); !errors.Is(err, kvstore.ErrTTLTooLarge) {
			t.Fatalf("huge TTL: %v", err)
		}
		leases, err := node.Leases(ctx)
		if err != nil || len(leases.IDs) != 0 {
			t.Fatalf("leases after bad input: %v, %v", leases, err)
		}
	})
}
