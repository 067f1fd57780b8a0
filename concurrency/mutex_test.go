package concurrency_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/concurrency"
	"github.com/kvstore/kvstore/kvtest"
)

// Contenders on every member take turns: never two in the critical
// section, every increment of an unguarded read-modify-write kept, and
// every acquisition's token above the previous one's.
func TestMutexManyContendersOnEveryMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		c.WaitLeader()
		const contenders, rounds = 9, 5
		var (
			inside    atomic.Int32
			mu        sync.Mutex
			lastToken int64
			wg        sync.WaitGroup
		)
		ctx := context.Background()
		for i := range contenders {
			node := c.Nodes()[i%3]
			s := newSession(t, node, concurrency.WithTTL(5))
			m := newMutex(t, s, "locks/counter")
			wg.Go(func() {
				for range rounds {
					if err := m.Lock(ctx); err != nil {
						t.Errorf("contender %d: Lock: %v", i, err)
						return
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders at once", n)
					}
					mu.Lock()
					if m.Token() <= lastToken {
						t.Errorf("token %d after %d", m.Token(), lastToken)
					}
					lastToken = m.Token()
					mu.Unlock()
					// A read-modify-write that only the lock protects.
					n, _ := strconv.Atoi(value(t, node, "counter"))
					if _, err := m.Txn(ctx).Then(kvstore.OpPut([]byte("counter"), []byte(strconv.Itoa(n+1)))).Commit(); err != nil {
						t.Errorf("contender %d: fenced put: %v", i, err)
					}
					inside.Add(-1)
					if err := m.Unlock(ctx); err != nil {
						t.Errorf("contender %d: Unlock: %v", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := value(t, c.WaitLeader(), "counter"); got != strconv.Itoa(contenders*rounds) {
			t.Fatalf("counter %s, want %d", got, contenders*rounds)
		}
		if n := countKeys(t, c.WaitLeader(), "locks/counter/"); n != 0 {
			t.Fatalf("%d lock keys left", n)
		}
	})
}

// Waiters acquire in the order they queued, each woken by its
// predecessor's release alone.
func TestMutexWaitersInQueueOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		holder := newMutex(t, newSession(t, c.WaitLeader()), "q")
		if err := holder.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		const waiters = 6
		order := make(chan int, waiters)
		var mutexes []*concurrency.Mutex
		for i := range waiters {
			m := newMutex(t, newSession(t, c.Nodes()[i%3]), "q")
			mutexes = append(mutexes, m)
			go func() {
				if err := m.Lock(ctx); err != nil {
					t.Errorf("waiter %d: %v", i, err)
				}
				order <- i
			}()
			synctest.Wait() // queued (blocked on its watch) before the next one
			if n := countKeys(t, c.WaitLeader(), "q/"); n != int64(i+2) {
				t.Fatalf("%d keys queued, want %d", n, i+2)
			}
		}
		if err := holder.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		for want := range waiters {
			got := <-order
			if got != want {
				t.Fatalf("waiter %d acquired in place %d", got, want)
			}
			synctest.Wait()
			select {
			case early := <-order:
				t.Fatalf("waiter %d acquired while %d held the lock", early, got)
			default:
			}
			if err := mutexes[got].Unlock(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TryLock fails at once on a held lock and leaves no key; Lock abandoned
// through its context deletes its key, so the waiters behind it still
// get the lock.
func TestMutexTryLockAndAbandonedLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		nodes := c.Nodes()
		holder := newMutex(t, newSession(t, nodes[0]), "l")
		if err := holder.TryLock(ctx); err != nil {
			t.Fatalf("TryLock of a free lock: %v", err)
		}
		other := newMutex(t, newSession(t, nodes[1]), "l")
		if err := other.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
			t.Fatalf("TryLock of a held lock: %v", err)
		}
		if n := countKeys(t, nodes[1], "l/"); n != 1 {
			t.Fatalf("%d keys after a failed TryLock, want 1", n)
		}
		if other.Token() != 0 {
			t.Fatalf("failed TryLock left token %d", other.Token())
		}

		wctx, cancel := context.WithCancel(ctx)
		abandoned := make(chan error, 1)
		go func() { abandoned <- other.Lock(wctx) }()
		synctest.Wait()
		behind := newMutex(t, newSession(t, nodes[2]), "l")
		acquired := make(chan error, 1)
		go func() { acquired <- behind.Lock(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-abandoned; !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned Lock: %v", err)
		}
		if n := countKeys(t, nodes[0], "l/"); n != 2 {
			t.Fatalf("%d keys after abandoning a Lock, want 2", n)
		}
		if err := holder.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-acquired; err != nil {
			t.Fatalf("the waiter behind an abandoned Lock: %v", err)
		}
		if err := behind.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// The holder's member is cut off: its session ends by its own clock before
// the lock can pass on, another contender acquires it, and after the heal
// the old holder's fenced write is refused while an unfenced one would
// have gone through.
func TestMutexPartitionedHolderIsFenced(t *testing.T) {
	for _, onLeader := range []bool{false, true} {
		t.Run(map[bool]string{false: "follower", true: "leader"}[onLeader], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, 3)
				ctx := context.Background()
				holderNode := c.Followers()[0]
				if onLeader {
					holderNode = c.WaitLeader()
				}
				var otherNode *kvstore.Node
				for _, n := range c.Nodes() {
					if n != holderNode {
						otherNode = n
					}
				}
				hs := newSession(t, holderNode, concurrency.WithTTL(2))
				holder := newMutex(t, hs, "jobs/lock")
				if err := holder.Lock(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := holder.Txn(ctx).Then(kvstore.OpPut([]byte("jobs/owner"), []byte("old"))).Commit(); err != nil {
					t.Fatal(err)
				}
				oldToken := holder.Token()

				contender := newMutex(t, newSession(t, otherNode, concurrency.WithTTL(2)), "jobs/lock")
				lostAt := make(chan time.Time, 1)
				go func() { <-hs.Done(); lostAt <- time.Now() }()
				acquired := make(chan error, 1)
				go func() { acquired <- contender.Lock(ctx) }()
				synctest.Wait()

				c.Isolate(c.Index(holderNode))
				select {
				case err := <-acquired:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("the lock never passed on from the cut-off holder")
				}
				acquiredAt := time.Now()
				synctest.Wait() // the goroutine above has run if Done is closed
				select {
				case at := <-lostAt:
					if acquiredAt.Before(at) {
						t.Fatalf("the lock passed on at %v, before the holder's session knew it was lost (%v)", acquiredAt, at)
					}
				default:
					t.Fatalf("the lock passed on at %v while the holder's session was still alive", acquiredAt)
				}
				if !errors.Is(hs.Err(), concurrency.ErrSessionExpired) {
					t.Fatalf("holder's session: %v", hs.Err())
				}
				if contender.Token() <= oldToken {
					t.Fatalf("new token %d, old %d", contender.Token(), oldToken)
				}
				if _, err := contender.Txn(ctx).Then(kvstore.OpPut([]byte("jobs/owner"), []byte("new"))).Commit(); err != nil {
					t.Fatal(err)
				}

				c.Heal()
				// The old holder, unaware, writes again through its member.
				_, err := holder.Txn(ctx).Then(kvstore.OpPut([]byte("jobs/owner"), []byte("stale"))).Commit()
				if !errors.Is(err, concurrency.ErrLockLost) {
					t.Fatalf("stale holder's fenced write: %v", err)
				}
				resp, err := holderNode.Txn(ctx).If(holder.IsOwner()).Then(kvstore.OpPut([]byte("jobs/owner"), []byte("stale"))).Commit()
				if err != nil || resp.Succeeded {
					t.Fatalf("txn guarded by IsOwner: %+v, %v", resp, err)
				}
				if got := value(t, holderNode, "jobs/owner"); got != "new" {
					t.Fatalf("jobs/owner = %q after the stale writes", got)
				}
				if err := holder.Unlock(ctx); !errors.Is(err, concurrency.ErrLockLost) {
					t.Fatalf("Unlock of a lost lock: %v", err)
				}
				if err := contender.Unlock(ctx); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// A Mutex of a lost session refuses to lock; bad input is refused.
func TestMutexBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		node := c.WaitLeader()
		ctx := context.Background()
		if _, err := concurrency.NewMutex(nil, "p"); !errors.Is(err, concurrency.ErrNilNode) {
			t.Fatalf("nil session: %v", err)
		}
		s := newSession(t, node)
		if _, err := concurrency.NewMutex(s, ""); !errors.Is(err, concurrency.ErrEmptyPrefix) {
			t.Fatalf("empty prefix: %v", err)
		}
		m := newMutex(t, s, "p")
		if want := fmt.Sprintf("p/%x", s.Lease()); m.Key() != want {
			t.Fatalf("key %q, want %q", m.Key(), want)
		}
		if err := m.Unlock(ctx); !errors.Is(err, concurrency.ErrNotLocked) {
			t.Fatalf("Unlock before Lock: %v", err)
		}
		if _, err := m.Txn(ctx).Then(kvstore.OpPut([]byte("x"), nil)).Commit(); !errors.Is(err, concurrency.ErrNotLocked) {
			t.Fatalf("fenced txn before Lock: %v", err)
		}
		if err := m.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Txn(ctx).Then().If().Commit(); !errors.Is(err, kvstore.ErrTxnOrder) {
			t.Fatalf("If after Then: %v", err)
		}
		if _, err := m.Txn(ctx).Then(kvstore.OpPut(nil, nil)).Commit(); !errors.Is(err, kvstore.ErrEmptyKey) {
			t.Fatalf("fenced txn with an empty key: %v", err)
		}
		if err := m.Lock(ctx); err != nil {
			t.Fatalf("Lock of a held Mutex: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Lock(ctx); !errors.Is(err, concurrency.ErrSessionClosed) {
			t.Fatalf("Lock on a closed session: %v", err)
		}
		if n := countKeys(t, node, "x"); n != 0 {
			t.Fatal("a refused txn wrote")
		}
	})
}
