package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// The corruption checks (corruption.go): a member whose in-memory store
// was changed behind raft's back is found, named in a CORRUPT alarm and in
// the log, and serves no reads or writes from then on; the others do.

// corruptCheckInterval is the compact hash check's interval in these
// tests (virtual time).
const corruptCheckInterval = 2 * time.Second

// putKeys writes keys k0..k<n-1> through node.
func putKeys(t *testing.T, node *kvstore.Node, n int) {
	t.Helper()
	for i := range n {
		if _, err := node.Put(context.Background(), []byte(fmt.Sprint("k", i)), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCorruptAlarm waits, polling virtual time, until node lists a CORRUPT
// alarm for member, and returns how long that took; it fails the test
// after limit.
func waitCorruptAlarm(t *testing.T, node *kvstore.Node, member string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		alarms, err := node.Alarms(context.Background())
		if err != nil {
			t.Fatalf("%s: Alarms: %v", node.ID(), err)
		}
		for _, a := range alarms {
			if a.Kind == kvstore.AlarmCorrupt {
				if a.MemberID != member {
					t.Fatalf("CORRUPT alarm raised for %s, want %s (alarms %v)", a.MemberID, member, alarms)
				}
				return time.Since(start)
			}
		}
		if time.Since(start) > limit {
			t.Fatalf("no CORRUPT alarm for %s within %v (alarms %v)", member, limit, alarms)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAppliedAlarm waits until node has applied a CORRUPT alarm.
func waitAppliedAlarm(t *testing.T, node *kvstore.Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(node.Status().Alarms) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not apply the alarm", node.ID())
		}
		time.Sleep(time.Millisecond)
	}
}

// checkCorruptRefuses fails unless every read, watch and write through
// node is refused with ErrCorrupt.
func checkCorruptRefuses(t *testing.T, node *kvstore.Node) {
	t.Helper()
	ctx := context.Background()
	calls := map[string]func() error{
		"linearizable get": func() error { _, err := node.Get(ctx, []byte("k3")); return err },
		"serializable get": func() error { _, err := node.Get(ctx, []byte("k3"), kvstore.WithSerializable()); return err },
		"read txn": func() error {
			_, err := node.Txn(ctx).Then(kvstore.OpGet([]byte("k3"), kvstore.WithSerializable())).Commit()
			return err
		},
		"watch":   func() error { _, err := node.Watch(ctx, []byte("k3"), kvstore.WithRev(1)); return err },
		"put":     func() error { _, err := node.Put(ctx, []byte("k3"), []byte("x")); return err },
		"delete":  func() error { _, err := node.Delete(ctx, []byte("k3")); return err },
		"compact": func() error { _, err := node.Compact(ctx, 2); return err },
		"grant":   func() error { _, err := node.Grant(ctx, 60); return err },
		"backup":  func() error { _, err := node.Backup(ctx, io.Discard); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, kvstore.ErrCorrupt) {
			t.Errorf("%s: %s: %v, want ErrCorrupt", node.ID(), name, err)
		}
	}
	if err := node.Ready(ctx); !errors.Is(err, kvstore.ErrNotReady) || !strings.Contains(err.Error(), "data_corruption") {
		t.Errorf("%s: Ready: %v, want data_corruption to fail", node.ID(), err)
	}
}

// checkServes fails unless node serves reads and writes, and is ready.
func checkServes(t *testing.T, node *kvstore.Node) {
	t.Helper()
	ctx := context.Background()
	if err := node.Ready(ctx); err != nil {
		t.Errorf("%s: Ready: %v", node.ID(), err)
	}
	if _, err := node.Put(ctx, []byte("after"), []byte(node.ID())); err != nil {
		t.Errorf("%s: put: %v", node.ID(), err)
	}
	for _, opts := range [][]kvstore.OpOption{nil, {kvstore.WithSerializable()}} {
		res, err := node.Get(ctx, []byte("k3"), opts...)
		if err != nil {
			t.Errorf("%s: get: %v", node.ID(), err)
		} else if len(res.KVs) != 1 || string(res.KVs[0].Value) != "v3" {
			t.Errorf("%s: get k3: %v, want v3", node.ID(), res.KVs)
		}
	}
}

// checkErrorLogged fails unless the log holds an error-level corruption
// record of check naming member among the corrupt.
func checkErrorLogged(t *testing.T, logs *logCapture, check, member string) {
	t.Helper()
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, r := range logs.records {
		if r.Level == slog.LevelError && strings.HasPrefix(r.Message, "corruption check: members' hashes differ") &&
			recordAttr(r, "check").String() == check && recordAttr(r, "corrupt").String() == member &&
			recordAttr(r, "revision").Int64() > 0 && strings.Contains(recordAttr(r, "hashes").String(), member+"=") {
			return
		}
	}
	var seen []string
	for _, r := range logs.records {
		if strings.HasPrefix(r.Message, "corruption check") {
			seen = append(seen, recordText(r))
		}
	}
	t.Errorf("no error-level %s corruption record naming %s; logged:\n%s", check, member, strings.Join(seen, "\n"))
}

// The leader's compact hash check finds a member whose store was
// corrupted within one interval of the next compaction, follower or the
// leader itself; that member refuses every read and write, the others
// serve (a corrupt leader hands leadership over), and a restart (which
// rebuilds the store from the log) plus a disarm puts it back.
func TestCorruptCompactHashCheck(t *testing.T) {
	for _, victim := range []string{"follower", "leader"} {
		t.Run(victim, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &logCapture{}
				c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithInitialCorruptCheck(false),
					kvstore.WithCorruptCheckInterval(corruptCheckInterval), kvstore.WithLogger(slog.New(logs))))
				leader := c.WaitLeader()
				putKeys(t, leader, 10)
				c.WaitApplied()
				bad := c.Index(leader)
				if victim == "follower" {
					bad = c.Index(c.Followers()[0])
				}
				badID := c.ID(bad)
				if err := c.CorruptValue(bad, []byte("k3"), []byte("garbage")); err != nil {
					t.Fatal(err)
				}
				// Nothing was compacted: the check has nothing to compare yet.
				time.Sleep(3 * corruptCheckInterval)
				if alarms := leader.Status().Alarms; len(alarms) != 0 {
					t.Fatalf("alarms before any compaction: %v", alarms)
				}
				if _, err := leader.Compact(context.Background(), leader.Status().Revision); err != nil {
					t.Fatal(err)
				}
				var healthy []*kvstore.Node
				for i := range 3 {
					if i != bad {
						healthy = append(healthy, c.Node(i))
					}
				}
				if took := waitCorruptAlarm(t, healthy[0], badID, 2*corruptCheckInterval); took > corruptCheckInterval+time.Second {
					t.Errorf("the alarm came %v after the compaction, interval %v", took, corruptCheckInterval)
				}
				checkErrorLogged(t, logs, "compact", badID)
				waitAppliedAlarm(t, c.Node(bad))
				checkCorruptRefuses(t, c.Node(bad))
				if victim == "leader" {
					var next *kvstore.Node
					for next == nil || next == c.Node(bad) {
						time.Sleep(corruptCheckInterval)
						next = c.WaitLeader()
					}
				}
				for _, n := range healthy {
					checkServes(t, n)
				}
				alarms, err := c.Node(bad).Alarms(context.Background())
				if err != nil || len(alarms) != 1 || alarms[0] != (kvstore.Alarm{MemberID: badID, Kind: kvstore.AlarmCorrupt}) {
					t.Fatalf("Alarms on the corrupt member: %v, %v", alarms, err)
				}
				// Repair: a restart rebuilds the store from the log, then the
				// operator disarms, through the repaired member itself.
				c.Stop(bad)
				c.Restart(bad)
				if err := c.Node(bad).DisarmAlarm(context.Background(), badID, kvstore.AlarmCorrupt); err != nil {
					t.Fatal(err)
				}
				checkServes(t, c.Node(bad))
				// The compact check leaves the repaired member alone.
				if _, err := c.Node(bad).Compact(context.Background(), c.Node(bad).Status().Revision); err != nil {
					t.Fatal(err)
				}
				time.Sleep(3 * corruptCheckInterval)
				if alarms := c.Node(bad).Status().Alarms; len(alarms) != 0 {
					t.Fatalf("alarms after the repair: %v", alarms)
				}
			})
		})
	}
}

// A member restarted with corrupt state is caught by its initial check,
// which compares its hash with the others' once it has caught up; no
// compaction, and no compact hash check, is needed.
func TestCorruptInitialCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logCapture{}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(
			kvstore.WithCorruptCheckInterval(0), kvstore.WithLogger(slog.New(logs))))
		leader := c.WaitLeader()
		putKeys(t, leader, 10)
		c.WaitApplied()
		bad := c.Index(c.Followers()[0])
		badID := c.ID(bad)
		c.Stop(bad)
		c.CorruptOnRestart(bad, []byte("k3"), []byte("garbage"))
		putKeys(t, leader, 5) // written again while it is down
		c.Restart(bad)
		waitCorruptAlarm(t, leader, badID, 10*time.Second)
		checkErrorLogged(t, logs, "initial", badID)
		waitAppliedAlarm(t, c.Node(bad))
		checkCorruptRefuses(t, c.Node(bad))
		for i := range 3 {
			if i != bad {
				checkServes(t, c.Node(i))
			}
		}
		c.Stop(bad) // its state disagrees: leave it out of the cleanup's check
	})
}

// A restart without corruption raises nothing: the initial check compares
// and agrees.
func TestCorruptInitialCheckHealthyRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithCorruptCheckInterval(0), kvstore.WithMetrics(reg)))
		leader := c.WaitLeader()
		putKeys(t, leader, 10)
		c.WaitApplied()
		f := c.Index(c.Followers()[0])
		c.Stop(f)
		putKeys(t, leader, 5)
		c.Restart(f)
		c.WaitApplied()
		time.Sleep(10 * time.Second)
		if alarms := leader.Status().Alarms; len(alarms) != 0 {
			t.Fatalf("alarms after a healthy restart: %v", alarms)
		}
		if got := counterValue(t, reg, "kvstore_corruption_checks_total", c.ID(f), "initial"); got != 1 {
			t.Fatalf("%s ran %v initial check rounds, want 1", c.ID(f), got)
		}
	})
}

// No false positives: many check intervals of writes and compactions,
// while a member lags behind (it answers at another compact revision, or
// not yet) and while one restarts, raise nothing; and the checks did
// compare.
func TestCorruptCheckNoFalsePositives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		logs := &logCapture{}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithCorruptCheckInterval(corruptCheckInterval),
			kvstore.WithMetrics(reg), kvstore.WithLogger(slog.New(logs))))
		ctx := context.Background()
		lagging := c.Index(c.Followers()[0])
		restarting := c.Index(c.Followers()[1])
		for round := range 30 {
			switch round {
			case 5:
				c.SetApplyDelay(lagging, 100*time.Millisecond)
			case 12:
				c.Stop(restarting)
			case 15:
				c.Restart(restarting)
			case 20:
				c.SetApplyDelay(lagging, 0)
			}
			via := c.WaitLeader()
			for i := range 20 {
				if _, err := via.Put(ctx, []byte(fmt.Sprint("key", i%7)), []byte(fmt.Sprint(round, "/", i))); err != nil {
					t.Fatal(err)
				}
			}
			// Compacting well behind the head leaves the lagging member,
			// some entries behind, past the revision but before the
			// compaction: it answers with another compact revision.
			if rev := via.Status().Revision - 50; round%3 == 2 && rev > 1 {
				if _, err := via.Compact(ctx, rev); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(corruptCheckInterval / 2)
		}
		c.WaitApplied()
		time.Sleep(3 * corruptCheckInterval)
		for _, n := range c.Nodes() {
			if alarms := n.Status().Alarms; len(alarms) != 0 {
				t.Fatalf("%s: alarms on a healthy cluster: %v", n.ID(), alarms)
			}
		}
		var rounds float64
		for i := range 3 {
			rounds += counterValue(t, reg, "kvstore_corruption_checks_total", c.ID(i), "compact")
		}
		if rounds < 5 {
			t.Fatalf("%v compact hash check rounds compared hashes, want at least 5", rounds)
		}
		for _, r := range logs.stop() {
			if r.Level >= slog.LevelError && strings.HasPrefix(r.Message, "corruption check") {
				t.Errorf("logged %s", recordText(r))
			}
		}
	})
}

// counterValue returns the value of counter name for member with label
// check, 0 if absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name, member, check string) float64 {
	t.Helper()
	fam, ok := scrape(t, reg)[name]
	if !ok {
		return 0
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["member"] == member && labels["check"] == check {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestCorruptCheckOptions(t *testing.T) {
	_, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithCorruptCheckInterval(-time.Second))
	if !errors.Is(err, kvstore.ErrInvalidOption) || !strings.Contains(err.Error(), "WithCorruptCheckInterval") {
		t.Fatalf("negative interval: %v, want ErrInvalidOption naming WithCorruptCheckInterval", err)
	}
}

// A leader that another member's check finds corrupt hands leadership
// over when it refuses a write, even with no compact hash check to run
// (WithCorruptCheckInterval(0)): else every write of the cluster, which
// needs the leader, would be refused until an operator stepped in.
func TestCorruptLeaderFoundByAnotherHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithCorruptCheckInterval(0)))
		leader := c.WaitLeader()
		putKeys(t, leader, 10)
		c.WaitApplied()
		bad := c.Index(leader)
		badID := c.ID(bad)
		if err := c.CorruptValue(bad, []byte("k3"), []byte("garbage")); err != nil {
			t.Fatal(err)
		}
		checker := c.Index(c.Followers()[0])
		c.Stop(checker)
		c.Restart(checker) // its initial check compares with the corrupt leader's
		waitCorruptAlarm(t, c.Node(checker), badID, 10*time.Second)
		waitAppliedAlarm(t, c.Node(bad))

		via := c.Node(checker)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := via.Put(context.Background(), []byte("after"), []byte("v"))
			if err == nil {
				break
			}
			if !errors.Is(err, kvstore.ErrCorrupt) {
				t.Fatalf("put through %s: %v", via.ID(), err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("writes still refused %v after the leader's CORRUPT alarm: %v", 10*time.Second, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if next := c.WaitLeader(); next.ID() == badID {
			t.Fatalf("the corrupt member %s still leads", badID)
		}
		c.Stop(bad) // its state disagrees: leave it out of the cleanup's check
	})
}
