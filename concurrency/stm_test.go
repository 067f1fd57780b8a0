package concurrency_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/concurrency"
	"github.com/kvstore/kvstore/kvtest"
)

var isolations = []concurrency.Isolation{
	concurrency.SerializableSnapshot, concurrency.Serializable,
	concurrency.RepeatableReads, concurrency.ReadCommitted,
}

func put(t *testing.T, node *kvstore.Node, key, val string) {
	t.Helper()
	if _, err := node.Put(context.Background(), []byte(key), []byte(val)); err != nil {
		t.Fatal(err)
	}
}

// Each isolation level against the anomalies it must prevent: a write made
// by someone else between the function's read and its commit (the
// "interference"), on its first run only. The table says, per level,
// whether the commit must notice it (and run the function again).
func TestSTMIsolationLevels(t *testing.T) {
	type anomaly struct {
		name string
		// run is the function; interfere is called once, inside its
		// first run, at the point where the interference belongs.
		run func(s concurrency.STM, interfere func()) error
		// interference is what interfere writes.
		interference func(t *testing.T, node *kvstore.Node)
		// retried[level] says whether the level must run the function
		// again.
		retried map[concurrency.Isolation]bool
	}
	increment := func(s concurrency.STM, interfere func()) error {
		v, err := s.Get("a")
		if err != nil {
			return err
		}
		interfere()
		n, _ := strconv.Atoi(string(v))
		s.Put("a", []byte(strconv.Itoa(n+1)))
		return nil
	}
	anomalies := []anomaly{{
		name:         "lost update",
		run:          increment,
		interference: func(t *testing.T, n *kvstore.Node) { put(t, n, "a", "10") },
		retried:      map[concurrency.Isolation]bool{0: true, 1: true, 2: true, 3: false},
	}, {
		// etcd's STM compares "mod revision < read + 1": a delete resets
		// the mod revision to 0 and passes; here it is a conflict.
		name: "key read, then deleted",
		run:  increment,
		interference: func(t *testing.T, n *kvstore.Node) {
			if _, err := n.Delete(context.Background(), []byte("a")); err != nil {
				t.Fatal(err)
			}
		},
		retried: map[concurrency.Isolation]bool{0: true, 1: true, 2: true, 3: false},
	}, {
		name: "missing key read, then created",
		run: func(s concurrency.STM, interfere func()) error {
			if _, err := s.Get("missing"); err != nil {
				return err
			}
			interfere()
			s.Put("b", []byte("saw missing"))
			return nil
		},
		interference: func(t *testing.T, n *kvstore.Node) { put(t, n, "missing", "now") },
		retried:      map[concurrency.Isolation]bool{0: true, 1: true, 2: true, 3: false},
	}, {
		// A blind write over a change made after the snapshot: only
		// SerializableSnapshot checks keys it did not read.
		name: "blind write after a newer change",
		run: func(s concurrency.STM, interfere func()) error {
			if _, err := s.Get("a"); err != nil {
				return err
			}
			interfere()
			s.Put("b", []byte("blind"))
			return nil
		},
		interference: func(t *testing.T, n *kvstore.Node) { put(t, n, "b", "other") },
		retried:      map[concurrency.Isolation]bool{0: true, 1: false, 2: false, 3: false},
	}}
	for _, a := range anomalies {
		for _, level := range isolations {
			t.Run(a.name+"/"+level.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					c := kvtest.NewCluster(t, 3)
					leader, follower := c.WaitLeader(), c.Followers()[0]
					put(t, leader, "a", "1")
					put(t, leader, "b", "0")
					runs := 0
					resp, err := concurrency.NewSTM(context.Background(), follower, func(s concurrency.STM) error {
						runs++
						return a.run(s, func() {
							if runs == 1 {
								a.interference(t, leader)
							}
						})
					}, concurrency.WithIsolation(level))
					if err != nil {
						t.Fatal(err)
					}
					if !resp.Succeeded {
						t.Fatal("response of an unsuccessful commit")
					}
					if retried := runs > 1; retried != a.retried[level] {
						t.Fatalf("%d runs: retried %v, want %v", runs, retried, a.retried[level])
					}
				})
			})
		}
	}
}

// The serializable levels read every key at the first read's revision;
// the others read the latest.
func TestSTMSnapshotReads(t *testing.T) {
	for _, level := range isolations {
		t.Run(level.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, 3)
				leader, follower := c.WaitLeader(), c.Followers()[0]
				put(t, leader, "a", "1")
				put(t, leader, "b", "1")
				var secondRead string
				first := true
				_, err := concurrency.NewSTM(context.Background(), follower, func(s concurrency.STM) error {
					if _, err := s.Get("a"); err != nil {
						return err
					}
					if first {
						put(t, leader, "b", "2")
						c.WaitApplied()
					}
					b, err := s.Get("b")
					if first {
						secondRead, first = string(b), false
					}
					return err
				}, concurrency.WithIsolation(level))
				if err != nil {
					t.Fatal(err)
				}
				snapshot := level == concurrency.Serializable || level == concurrency.SerializableSnapshot
				if want := map[bool]string{true: "1", false: "2"}[snapshot]; secondRead != want {
					t.Fatalf("second read %q, want %q", secondRead, want)
				}
			})
		})
	}
}

// Bank transfers on every member at every level that checks its reads,
// under leader changes, a crashed and restarted member and a partition:
// money is neither made nor lost, as every member reads it.
func TestSTMBankTransfersUnderFaults(t *testing.T) {
	for _, level := range isolations[:3] {
		t.Run(level.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, 3)
				ctx := context.Background()
				const accounts, initial = 5, 100
				for i := range accounts {
					put(t, c.WaitLeader(), fmt.Sprint("acct/", i), strconv.Itoa(initial))
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var mu sync.Mutex
				committed, unknown := 0, 0
				for w := range 6 {
					node := c.Nodes()[w%3]
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							from, to := rng.IntN(accounts), rng.IntN(accounts)
							amount := rng.IntN(20) + 1
							tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
							_, err := concurrency.NewSTM(tctx, node, func(s concurrency.STM) error {
								return transfer(s, from, to, amount)
							}, concurrency.WithIsolation(level))
							cancel()
							mu.Lock()
							switch {
							case err == nil:
								committed++
							case errors.Is(err, kvstore.ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded),
								errors.Is(err, concurrency.ErrTooManyConflicts), errors.Is(err, kvstore.ErrClosed):
								unknown++ // nothing, or the whole transfer, happened
							default:
								t.Errorf("transfer: %v", err)
							}
							mu.Unlock()
							if errors.Is(err, kvstore.ErrClosed) {
								return // this worker's member crashed
							}
							// Pace the workers (and back off after errors, some of
							// which come at once): in virtual time an unpaced
							// loop does unbounded work per virtual second.
							time.Sleep(50 * time.Millisecond)
						}
					})
				}
				time.Sleep(time.Second)
				if err := c.TransferLeader((c.Index(c.WaitLeader()) + 1) % 3); err != nil {
					t.Log("transfer leader:", err)
				}
				time.Sleep(time.Second)
				victim := c.Index(c.Followers()[0])
				c.Stop(victim)
				time.Sleep(time.Second)
				c.Restart(victim)
				time.Sleep(time.Second)
				c.Isolate(c.Index(c.WaitLeader()))
				time.Sleep(time.Second)
				c.Heal()
				time.Sleep(time.Second)
				close(stop)
				wg.Wait()
				c.WaitApplied()
				for _, n := range c.Nodes() {
					resp, err := n.Get(ctx, []byte("acct/"), kvstore.WithPrefix(), kvstore.WithSerializable())
					if err != nil {
						t.Fatal(err)
					}
					total := 0
					for _, kv := range resp.KVs {
						v, _ := strconv.Atoi(string(kv.Value))
						total += v
					}
					if total != accounts*initial {
						t.Fatalf("%s holds %d in total, want %d", n.ID(), total, accounts*initial)
					}
				}
				if committed < 20 {
					t.Fatalf("only %d transfers committed (%d failed)", committed, unknown)
				}
				t.Logf("%d transfers committed, %d failed or unknown", committed, unknown)
			})
		})
	}
}

// transfer moves amount from one account to another if it is covered.
func transfer(s concurrency.STM, from, to, amount int) error {
	if from == to {
		return nil
	}
	fk, tk := fmt.Sprint("acct/", from), fmt.Sprint("acct/", to)
	fv, err := s.Get(fk)
	if err != nil {
		return err
	}
	tv, err := s.Get(tk)
	if err != nil {
		return err
	}
	f, _ := strconv.Atoi(string(fv))
	g, _ := strconv.Atoi(string(tv))
	if f < amount {
		return nil
	}
	s.Put(fk, []byte(strconv.Itoa(f-amount)))
	s.Put(tk, []byte(strconv.Itoa(g+amount)))
	return nil
}

// Retries are bounded; errors of the function, of the context and of bad
// input end the STM with nothing written.
func TestSTMFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader, node := c.WaitLeader(), c.Followers()[0]
		put(t, leader, "a", "0")
		runs := 0
		_, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
			runs++
			if _, err := s.Get("a"); err != nil {
				return err
			}
			put(t, leader, "a", strconv.Itoa(runs)) // a conflict every time
			s.Put("written", []byte("x"))
			return nil
		}, concurrency.WithRetries(3))
		if !errors.Is(err, concurrency.ErrTooManyConflicts) || runs != 4 {
			t.Fatalf("always conflicting: %v after %d runs", err, runs)
		}

		boom := errors.New("boom")
		if _, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
			s.Put("written", []byte("x"))
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("function error: %v", err)
		}

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := concurrency.NewSTM(cctx, node, func(s concurrency.STM) error {
			s.Put("written", []byte("x"))
			return nil
		}); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled context: %v", err)
		}

		if _, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
			s.Put("written", []byte("x"))
			s.Put("", []byte("x"))
			return nil
		}); !errors.Is(err, kvstore.ErrEmptyKey) {
			t.Fatalf("empty key: %v", err)
		}
		if _, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
			s.Get("") // error ignored by the function: still fails the STM
			s.Put("written", []byte("x"))
			return nil
		}); !errors.Is(err, kvstore.ErrEmptyKey) {
			t.Fatalf("ignored read error: %v", err)
		}
		if _, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
			s.Put("written", []byte("x"), kvstore.WithPrefix())
			return nil
		}); !errors.Is(err, kvstore.ErrInvalidOpOption) {
			t.Fatalf("bad put option: %v", err)
		}
		if _, err := concurrency.NewSTM(ctx, nil, func(concurrency.STM) error { return nil }); !errors.Is(err, concurrency.ErrNilNode) {
			t.Fatalf("nil node: %v", err)
		}
		if _, err := concurrency.NewSTM(ctx, node, nil); err == nil {
			t.Fatal("nil function accepted")
		}
		if _, err := concurrency.NewSTM(ctx, node, func(concurrency.STM) error { return nil },
			concurrency.WithIsolation(concurrency.Isolation(7))); !errors.Is(err, concurrency.ErrInvalidIsolation) {
			t.Fatalf("bad isolation: %v", err)
		}
		if n := countKeys(t, leader, "written"); n != 0 {
			t.Fatal("a failed STM wrote")
		}
	})
}

// Reads see the function's own writes; Prefetch reads in one round trip
// and a missing key reads as nil, an empty one as empty.
func TestSTMReadsOwnWritesAndPrefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		node := c.Followers()[0]
		put(t, c.WaitLeader(), "empty", "")
		resp, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
			if v, err := s.Get("empty"); err != nil || v == nil || len(v) != 0 {
				return fmt.Errorf("empty key read %q, %v", v, err)
			}
			if v, err := s.Get("missing"); err != nil || v != nil {
				return fmt.Errorf("missing key read %q, %v", v, err)
			}
			s.Put("k", []byte("v"))
			if v, _ := s.Get("k"); string(v) != "v" {
				return fmt.Errorf("own write read %q", v)
			}
			s.Del("empty")
			if v, _ := s.Get("empty"); v != nil {
				return fmt.Errorf("own delete read %q", v)
			}
			if rev, _ := s.Rev("missing"); rev != 0 {
				return fmt.Errorf("Rev of a missing key %d", rev)
			}
			return nil
		}, concurrency.WithPrefetch("empty", "missing"))
		if err != nil {
			t.Fatal(err)
		}
		if got := value(t, node, "k"); got != "v" || countKeys(t, node, "empty") != 0 {
			t.Fatalf("after commit: k=%q, empty exists=%d (rev %d)", got, countKeys(t, node, "empty"), resp.Header.Revision)
		}
	})
}
