package concurrency_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/concurrency"
	"github.com/kvstore/kvstore/kvtest"
)

func newElection(t *testing.T, s *concurrency.Session, prefix string) *concurrency.Election {
	t.Helper()
	e, err := concurrency.NewElection(s, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// next receives from an Observe channel within a bound.
func next(t *testing.T, ch <-chan kvstore.KeyValue) kvstore.KeyValue {
	t.Helper()
	select {
	case kv, ok := <-ch:
		if !ok {
			t.Fatal("Observe's channel closed")
		}
		return kv
	case <-time.After(30 * time.Second):
		t.Fatal("no leader observed")
	}
	panic("unreachable")
}

// Candidates on every member: one leader at a time, elected in the order
// they campaigned; Leader and an observer on another member agree with
// each step, Proclaim included.
func TestElectionLeadersInTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		nodes := c.Nodes()
		observer := newElection(t, newSession(t, nodes[2]), "svc")
		if _, err := observer.Leader(ctx); !errors.Is(err, concurrency.ErrNoLeader) {
			t.Fatalf("Leader of an empty election: %v", err)
		}
		octx, stop := context.WithCancel(ctx)
		defer stop()
		observed := observer.Observe(octx)

		const candidates = 4
		elected := make(chan int, candidates)
		var elections []*concurrency.Election
		for i := range candidates {
			e := newElection(t, newSession(t, nodes[i%3]), "svc")
			elections = append(elections, e)
			go func() {
				if err := e.Campaign(ctx, fmt.Appendf(nil, "c%d", i)); err != nil {
					t.Errorf("candidate %d: %v", i, err)
					return
				}
				elected <- i
			}()
			synctest.Wait()
		}
		for want := range candidates {
			got := <-elected
			if got != want {
				t.Fatalf("candidate %d elected in turn %d", got, want)
			}
			synctest.Wait()
			if len(elected) != 0 {
				t.Fatal("two candidates elected at once")
			}
			e := elections[got]
			kv := next(t, observed)
			if string(kv.Value) != fmt.Sprint("c", got) || string(kv.Key) != e.Key() || kv.CreateRevision != e.Rev() {
				t.Fatalf("observed %s=%s rev %d, want %s=c%d rev %d", kv.Key, kv.Value, kv.CreateRevision, e.Key(), got, e.Rev())
			}
			if err := e.Proclaim(ctx, []byte("busy")); err != nil {
				t.Fatal(err)
			}
			if kv := next(t, observed); string(kv.Value) != "busy" || string(kv.Key) != e.Key() {
				t.Fatalf("observed %s=%s after Proclaim", kv.Key, kv.Value)
			}
			lead, err := observer.Leader(ctx)
			if err != nil || string(lead.Key) != e.Key() || string(lead.Value) != "busy" {
				t.Fatalf("Leader: %v, %v", lead, err)
			}
			if got+1 < candidates {
				if err := elections[got+1].Proclaim(ctx, []byte("x")); !errors.Is(err, concurrency.ErrNotLeader) {
					t.Fatalf("Proclaim by a waiting candidate: %v", err)
				}
			}
			if err := e.Resign(ctx); err != nil {
				t.Fatal(err)
			}
			if err := e.Proclaim(ctx, []byte("x")); !errors.Is(err, concurrency.ErrNotLeader) {
				t.Fatalf("Proclaim after Resign: %v", err)
			}
		}
		if _, err := observer.Leader(ctx); !errors.Is(err, concurrency.ErrNoLeader) {
			t.Fatalf("Leader after everyone resigned: %v", err)
		}
	})
}

// The raft leader's member crashes while candidates campaign on every
// member: the campaigns through the others go on, one leader at a time,
// each with a higher fencing token, and a dead candidate's leadership
// passes on once its lease expires.
func TestElectionLeaderFailoverDuringCampaign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		raftLeader := c.WaitLeader()
		type result struct {
			i   int
			err error
		}
		results := make(chan result, 3)
		var elections []*concurrency.Election
		for i, n := range c.Nodes() {
			e := newElection(t, newSession(t, n, concurrency.WithTTL(2)), "svc")
			elections = append(elections, e)
			go func() { results <- result{i, e.Campaign(ctx, fmt.Appendf(nil, "c%d", i))} }()
		}
		dead := c.Index(raftLeader)
		c.Stop(dead) // while the campaigns' first txns are in flight
		var lastRev int64
		for range 3 {
			var r result
			select {
			case r = <-results:
			case <-time.After(30 * time.Second):
				t.Fatal("a campaign never ended")
			}
			e := elections[r.i]
			if r.i == dead {
				if r.err == nil {
					// Elected before the crash: its fenced writes now fail
					// once its lease is gone.
					continue
				}
				if !errors.Is(r.err, concurrency.ErrSessionExpired) && !errors.Is(r.err, kvstore.ErrClosed) {
					t.Fatalf("campaign on the crashed member: %v", r.err)
				}
				continue
			}
			if r.err != nil {
				t.Fatalf("candidate %d: %v", r.i, r.err)
			}
			if e.Rev() <= lastRev {
				t.Fatalf("leader token %d after %d", e.Rev(), lastRev)
			}
			lastRev = e.Rev()
			// The put is idempotent, so an unknown outcome (the crash) may
			// be retried; the fence still holds each time.
			for {
				_, err := e.Txn(ctx).Then(kvstore.OpPut([]byte("svc-leader"), fmt.Appendf(nil, "c%d", r.i))).Commit()
				if err == nil {
					break
				}
				if !errors.Is(err, kvstore.ErrOutcomeUnknown) {
					t.Fatalf("candidate %d's fenced write: %v", r.i, err)
				}
				time.Sleep(100 * time.Millisecond) // a new raft leader is being elected
			}
			if err := e.Resign(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := elections[dead].Txn(ctx).Then(kvstore.OpPut([]byte("svc-leader"), []byte("dead"))).Commit(); err == nil {
			t.Fatal("the crashed candidate's fenced write succeeded")
		}
		c.Restart(dead)
	})
}

// Observe's channel closes with its context and with its node.
func TestElectionObserveEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		node := c.Followers()[0]
		e := newElection(t, newSession(t, node), "svc")
		if err := e.Campaign(ctx, []byte("v")); err != nil {
			t.Fatal(err)
		}
		octx, cancel := context.WithCancel(ctx)
		ch := e.Observe(octx)
		next(t, ch)
		cancel()
		for range ch {
		}
		ch = e.Observe(ctx)
		next(t, ch)
		i := c.Index(node)
		c.Stop(i)
		select {
		case _, ok := <-ch:
			if ok {
				t.Fatal("Observe sent after its node closed")
			}
		case <-time.After(time.Second):
			t.Fatal("Observe outlived its node")
		}
		c.Restart(i)
	})
}

func TestElectionBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		if _, err := concurrency.NewElection(nil, "p"); !errors.Is(err, concurrency.ErrNilNode) {
			t.Fatal(err)
		}
		s := newSession(t, c.WaitLeader())
		if _, err := concurrency.NewElection(s, ""); !errors.Is(err, concurrency.ErrEmptyPrefix) {
			t.Fatal(err)
		}
		e := newElection(t, s, "p")
		if err := e.Proclaim(ctx, []byte("v")); !errors.Is(err, concurrency.ErrNotLeader) {
			t.Fatalf("Proclaim before Campaign: %v", err)
		}
		if err := e.Resign(ctx); err != nil {
			t.Fatalf("Resign before Campaign: %v", err)
		}
		if _, err := e.Txn(ctx).Then(kvstore.OpPut([]byte("x"), nil)).Commit(); !errors.Is(err, concurrency.ErrNotLeader) {
			t.Fatalf("fenced txn before Campaign: %v", err)
		}
		if n := countKeys(t, c.WaitLeader(), ""); n != 0 {
			t.Fatalf("%d keys after refused calls", n)
		}
	})
}
