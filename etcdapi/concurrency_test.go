package etcdapi_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Tests of clientv3's concurrency recipes (Session, Mutex, Election, STM)
// against a kvstore cluster, unchanged: they are built on leases,
// keep-alives, Txn compares on create revisions and watches, so they work
// only if each of those answers as etcd's.

// steadyCluster starts a 3-member cluster whose followers wait half a
// second without a heartbeat before they campaign (kvtest's default is
// 50 ms): the recipes' tests and the conformance replay run many calls, and on a loaded
// machine a spurious election fails a write with an unknown outcome
// (ErrTimeout), which a lock holder cannot tell from a lost write.
func steadyCluster(t *testing.T) *testCluster {
	t.Helper()
	return newCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithRaftTiming(500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond, 5*time.Millisecond)))
}

// TestSession: a session's lease lives as long as its client keeps it
// alive, past its TTL, and expires within about its TTL once the client
// dies without revoking it; Close revokes it.
func TestSession(t *testing.T) {
	c := steadyCluster(t)
	ctx := testContext(t)
	observer := c.client(t)
	const ttl = 2
	ttlOf := func(id clientv3.LeaseID) int64 {
		t.Helper()
		res, err := observer.TimeToLive(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return res.TTL
	}

	dying, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := concurrency.NewSession(dying, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dying.Put(ctx, "owned", "x", clientv3.WithLease(s.Lease())); err != nil {
		t.Fatal(err)
	}
	// Alive past twice its TTL while the client keeps it alive.
	for start := time.Now(); time.Since(start) < 2*ttl*time.Second; {
		if got := ttlOf(s.Lease()); got <= 0 {
			t.Fatalf("the session's lease expired while kept alive (TTL %d)", got)
		}
		if err := waitTick(ctx, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-s.Done():
		t.Fatal("the session ended while its client lived")
	default:
	}
	// The client dies without revoking: the lease and its key go.
	dying.Close()
	deadline := time.Now().Add(10 * ttl * time.Second)
	for ttlOf(s.Lease()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the lease of a dead client's session still lives after %ds", 10*ttl)
		}
		if err := waitTick(ctx, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if get, err := observer.Get(ctx, "owned"); err != nil || get.Count != 0 {
		t.Errorf("the expired session's key: %+v %v", get, err)
	}

	closing := c.client(t)
	s2, err := concurrency.NewSession(closing, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ttlOf(s2.Lease()); got != -1 {
		t.Errorf("lease TTL %d after Session.Close, want -1 (revoked)", got)
	}
}

// waitTick waits d, or returns ctx's error. It paces polls that wait for
// a lease's real-time TTL.
func waitTick(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestMutex: TryLock fails with ErrLocked while another session holds the
// lock; under contention from several clients, each on its own endpoint,
// Lock admits one holder at a time: a counter read and written
// non-atomically under the lock loses no increment.
func TestMutex(t *testing.T) {
	c := steadyCluster(t)
	ctx := testContext(t)
	session := func(cli *clientv3.Client) *concurrency.Session {
		t.Helper()
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}

	a := concurrency.NewMutex(session(c.client(t, 0)), "lock/")
	b := concurrency.NewMutex(session(c.client(t, 1)), "lock/")
	if err := a.TryLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("TryLock of a held lock: %v, want ErrLocked", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.TryLock(ctx); err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	if err := b.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	const workers, rounds = 6, 10
	var inside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		cli := c.client(t, w%3)
		m := concurrency.NewMutex(session(cli), "lock/")
		wg.Go(func() {
			for range rounds {
				if err := incrementUnder(ctx, cli, m, &inside); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	get, err := c.client(t).Get(ctx, "counter")
	if err != nil || len(get.Kvs) != 1 || string(get.Kvs[0].Value) != strconv.Itoa(workers*rounds) {
		t.Errorf("counter %+v %v, want %d", get, err, workers*rounds)
	}
}

// incrementUnder takes m, reads and rewrites "counter" as two separate
// calls, and releases m; inside counts the holders, which must be one.
func incrementUnder(ctx context.Context, cli *clientv3.Client, m *concurrency.Mutex, inside *atomic.Int32) error {
	if err := m.Lock(ctx); err != nil {
		return err
	}
	if n := inside.Add(1); n != 1 {
		return fmt.Errorf("%d holders of the lock", n)
	}
	err := increment(ctx, cli)
	inside.Add(-1)
	if uerr := m.Unlock(ctx); err == nil {
		err = uerr
	}
	return err
}

// increment reads "counter" and writes it back plus one, as two calls.
func increment(ctx context.Context, cli *clientv3.Client) error {
	get, err := cli.Get(ctx, "counter")
	if err != nil {
		return err
	}
	n := 0
	if len(get.Kvs) == 1 {
		n, _ = strconv.Atoi(string(get.Kvs[0].Value))
	}
	_, err = cli.Put(ctx, "counter", strconv.Itoa(n+1))
	return err
}

// TestElection: candidates on several clients campaign; one leads at a
// time, in campaign order, an observer sees each leader, and Resign hands
// over. The leader's client has every endpoint: when the raft leader's
// member dies it fails over, its session survives, and it still leads.
func TestElection(t *testing.T) {
	c := steadyCluster(t)
	ctx := testContext(t)
	campaigner := func(cli *clientv3.Client) *concurrency.Election {
		t.Helper()
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return concurrency.NewElection(s, "election/")
	}
	observer := campaigner(c.client(t))
	observed := observer.Observe(ctx)
	nextLeader := func() string {
		t.Helper()
		select {
		case resp, ok := <-observed:
			if !ok {
				t.Fatal("Observe ended")
			}
			return string(resp.Kvs[0].Value)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		return ""
	}

	first := campaigner(c.client(t))
	if err := first.Campaign(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	if got := nextLeader(); got != "first" {
		t.Fatalf("observed %q, want first", got)
	}
	// The victim is the raft leader, which dies below; second's client
	// is on another member.
	victim := c.Index(c.WaitLeader())
	second := campaigner(c.client(t, (victim+1)%3))
	won := make(chan error, 1)
	go func() { won <- second.Campaign(ctx, "second") }()
	// second waits: its key is created (a later create revision) but
	// first's is older.
	waitCandidates(t, c.client(t), 2)
	select {
	case err := <-won:
		t.Fatalf("second won while first leads: %v", err)
	default:
	}

	// The raft leader's member dies; first's client fails over.
	c.stop(victim)
	c.WaitLeader()
	if err := first.Proclaim(ctx, "first again"); err != nil {
		t.Fatalf("Proclaim after the member died: %v", err)
	}
	if leader, err := first.Leader(ctx); err != nil || string(leader.Kvs[0].Value) != "first again" {
		t.Fatalf("leader after failover: %+v %v", leader, err)
	}
	if err := first.Resign(ctx); err != nil {
		t.Fatalf("Resign after failover: %v", err)
	}
	select {
	case err := <-won:
		if err != nil {
			t.Fatalf("second's campaign: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("second never won: %v", ctx.Err())
	}
	for got := nextLeader(); got != "second"; got = nextLeader() {
		if got != "first again" {
			t.Fatalf("observed %q, want first again, then second", got)
		}
	}
	if err := second.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Leader(ctx); !errors.Is(err, concurrency.ErrElectionNoLeader) {
		t.Errorf("leader after everyone resigned: %v, want ErrElectionNoLeader", err)
	}
}

// waitCandidates waits until the election's prefix holds n keys.
func waitCandidates(t *testing.T, cli *clientv3.Client, n int64) {
	t.Helper()
	ctx := testContext(t)
	for {
		get, err := cli.Get(ctx, "election/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil && !errors.Is(err, rpctypes.ErrNoLeader) {
			t.Fatal(err)
		}
		if err == nil && get.Count == n {
			return
		}
		if err := waitTick(ctx, 10*time.Millisecond); err != nil {
			t.Fatalf("waiting for %d candidates: %v", n, err)
		}
	}
}

// TestSTM: concurrent transfers between accounts, each an STM transaction
// retried on conflict, keep the total at every isolation level that
// validates its reads, with clients on every endpoint.
func TestSTM(t *testing.T) {
	for _, iso := range []struct {
		name  string
		level concurrency.Isolation
	}{
		{"SerializableSnapshot", concurrency.SerializableSnapshot},
		{"Serializable", concurrency.Serializable},
		{"RepeatableReads", concurrency.RepeatableReads},
	} {
		t.Run(iso.name, func(t *testing.T) {
			c := steadyCluster(t)
			ctx := testContext(t)
			const accounts, balance, workers, transfers = 5, 100, 6, 15
			setup := c.client(t)
			for i := range accounts {
				if _, err := setup.Put(ctx, fmt.Sprint("acct/", i), strconv.Itoa(balance)); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				cli := c.client(t, w%3)
				wg.Go(func() {
					for k := range transfers {
						from, to := fmt.Sprint("acct/", (w+k)%accounts), fmt.Sprint("acct/", (w+2*k+1)%accounts)
						if from == to {
							continue
						}
						_, err := concurrency.NewSTM(cli, func(stm concurrency.STM) error {
							a, _ := strconv.Atoi(stm.Get(from))
							b, _ := strconv.Atoi(stm.Get(to))
							amount := min(a, 1+(w+k)%7)
							stm.Put(from, strconv.Itoa(a-amount))
							stm.Put(to, strconv.Itoa(b+amount))
							return nil
						}, concurrency.WithIsolation(iso.level), concurrency.WithAbortContext(ctx))
						if err != nil {
							errs <- fmt.Errorf("worker %d transfer %d: %w", w, k, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			get, err := setup.Get(ctx, "acct/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, kv := range get.Kvs {
				n, _ := strconv.Atoi(string(kv.Value))
				if n < 0 {
					t.Errorf("%s overdrawn: %d", kv.Key, n)
				}
				total += n
			}
			if total != accounts*balance || len(get.Kvs) != accounts {
				t.Errorf("total %d over %d accounts, want %d over %d", total, len(get.Kvs), accounts*balance, accounts)
			}
		})
	}
}
