package robustness_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/kvstore/kvstore/internal/robustness"
	"github.com/kvstore/kvstore/kvtest"
)

// The nemesis injects one fault at a time, from a schedule drawn from the
// seed: wait Gap, inject, hold Hold, recover. Targets named by role
// ("leader", "a follower") are resolved when the fault is injected; the
// fault log records what was actually done, and is printed on failure.

type faultKind int

const (
	faultIsolateLeader    faultKind = iota // leader cut off, both ways
	faultMinority                          // a minority of followers cut off from the rest
	faultLeaderInMinority                  // the leader on the minority side of a partition
	faultOneWayCut                         // messages one way between the leader and a follower dropped
	faultRestart                           // a node stopped, then restarted from its storage
	faultTransferLeader                    // leadership handed to a follower
	faultRemoveReAdd                       // a member removed, wiped and added back
	faultSnapshotCatchUp                   // a follower cut off, the leader snapshots and truncates its log, the follower comes back
	faultSlowApply                         // one member applies slowly
	faultClockJump                         // the leader's lease clock jumps forward past every lease's TTL
	numFaultKinds
)

var faultNames = [...]string{"isolate-leader", "minority-partition", "leader-in-minority", "one-way-cut", "restart",
	"transfer-leader", "remove-readd", "snapshot-catchup", "slow-apply", "clock-jump"}

func (k faultKind) String() string { return faultNames[k] }

type fault struct {
	Kind      faultKind
	Gap, Hold time.Duration
	// Pick chooses among candidates (followers, directions) when injected.
	Pick int
}

// schedule is what a seed decides.
type schedule struct {
	Seed    uint64
	Nodes   int
	Clients int
	Faults  []fault
}

func newSchedule(seed uint64) schedule {
	rng := rand.New(rand.NewPCG(seed, 0x6b7673746f7265))
	s := schedule{Seed: seed, Nodes: 3, Clients: 4}
	if rng.IntN(3) == 0 {
		s.Nodes, s.Clients = 5, 5
	}
	// Every kind appears; the order and timing come from the seed, and
	// a few kinds twice.
	kinds := rng.Perm(int(numFaultKinds))
	for range 2 {
		kinds = append(kinds, rng.IntN(int(numFaultKinds)))
	}
	for _, k := range kinds {
		s.Faults = append(s.Faults, fault{
			Kind: faultKind(k),
			Gap:  time.Duration(100+rng.IntN(300)) * time.Millisecond,
			Hold: time.Duration(300+rng.IntN(900)) * time.Millisecond,
			Pick: rng.IntN(1 << 20),
		})
	}
	return s
}

func (s schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d nodes, %d clients; faults:", s.Seed, s.Nodes, s.Clients)
	for _, f := range s.Faults {
		fmt.Fprintf(&b, " [after %v: %v for %v]", f.Gap, f.Kind, f.Hold)
	}
	return b.String()
}

// nemesis injects a schedule's faults into a cluster.
type nemesis struct {
	c    *kvtest.Cluster
	reg  *registry
	hist *robustness.History
	log  *[]string // what was done, one line per step
	// client is the client ID under which the nemesis records the
	// operations it stands for (lease expiries).
	client int
}

func (n *nemesis) logf(format string, args ...any) {
	*n.log = append(*n.log, fmt.Sprintf("%v @%d ", time.Now().Format("15:04:05.000"), n.hist.Now())+fmt.Sprintf(format, args...))
}

// refresh publishes the cluster's current nodes to the traffic.
func (n *nemesis) refresh() {
	for i := range n.reg.nodes {
		n.reg.set(i, n.c.Node(i))
	}
}

// leader returns the index of the current leader.
func (n *nemesis) leader() int { return n.c.Index(n.c.WaitLeader()) }

// follower returns the index of a follower, chosen by pick.
func (n *nemesis) follower(pick int) int {
	fs := n.c.Followers()
	return n.c.Index(fs[pick%len(fs)])
}

// others lists the member indexes other than skip.
func (n *nemesis) others(skip ...int) []int {
	var out []int
	for i := range n.reg.nodes {
		skipped := false
		for _, s := range skip {
			skipped = skipped || s == i
		}
		if !skipped {
			out = append(out, i)
		}
	}
	return out
}

// run injects f and recovers from it.
func (n *nemesis) run(f fault) {
	time.Sleep(f.Gap)
	switch f.Kind {
	case faultIsolateLeader:
		l := n.leader()
		n.logf("isolate leader %s", n.c.ID(l))
		n.c.Isolate(l)
		time.Sleep(f.Hold)
		n.c.Heal()
	case faultMinority:
		size := (len(n.reg.nodes) - 1) / 2
		var minority []int
		for range size {
			minority = append(minority, n.follower(f.Pick+len(minority)))
		}
		n.logf("partition followers %v from the rest", minority)
		n.c.Partition(minority, n.others(minority...))
		time.Sleep(f.Hold)
		n.c.Heal()
	case faultLeaderInMinority:
		size := (len(n.reg.nodes) - 1) / 2
		minority := []int{n.leader()}
		for len(minority) < size {
			minority = append(minority, n.follower(f.Pick+len(minority)))
		}
		n.logf("partition %v (the leader first) from the rest", minority)
		n.c.Partition(minority, n.others(minority...))
		time.Sleep(f.Hold)
		n.c.Heal()
	case faultOneWayCut:
		l, fo := n.leader(), n.follower(f.Pick)
		if f.Pick%2 == 0 {
			l, fo = fo, l
		}
		n.logf("cut %s -> %s", n.c.ID(l), n.c.ID(fo))
		n.c.Cut(l, fo)
		time.Sleep(f.Hold)
		n.c.Heal()
	case faultRestart:
		i := f.Pick % len(n.reg.nodes)
		n.logf("stop %s", n.c.ID(i))
		n.c.Stop(i)
		n.refresh()
		time.Sleep(f.Hold)
		n.c.Restart(i)
		n.refresh()
		n.logf("restarted %s", n.c.ID(i))
	case faultTransferLeader:
		l, to := n.leader(), n.follower(f.Pick)
		err := n.c.TransferLeader(to)
		n.logf("transfer leadership %s -> %s: %v", n.c.ID(l), n.c.ID(to), err)
		time.Sleep(f.Hold)
	case faultRemoveReAdd:
		i := f.Pick % len(n.reg.nodes)
		err := n.c.RemoveAndReAdd(i)
		n.refresh()
		n.logf("remove and re-add %s: %v", n.c.ID(i), err)
		time.Sleep(f.Hold)
	case faultSnapshotCatchUp:
		fo := n.follower(f.Pick)
		n.logf("isolate %s", n.c.ID(fo))
		n.c.Isolate(fo)
		time.Sleep(f.Hold)
		l := n.leader()
		err := n.c.Snapshot(l)
		n.logf("snapshot on leader %s: %v; heal", n.c.ID(l), err)
		n.c.Heal()
	case faultSlowApply:
		i := f.Pick % len(n.reg.nodes)
		d := time.Duration(1+f.Pick%20) * time.Millisecond
		n.logf("slow apply on %s: %v per entry", n.c.ID(i), d)
		n.c.SetApplyDelay(i, d)
		time.Sleep(f.Hold)
		n.c.SetApplyDelay(i, 0)
	case faultClockJump:
		l := n.leader()
		n.logf("clock of leader %s jumps %v ahead", n.c.ID(l), 2*leaseTTL*time.Second)
		// Every lease may expire from now on: the model learns it as a
		// revoke of each lease with an unknown outcome.
		call := n.hist.Now()
		for lease := range robustness.NumLeases {
			n.hist.Add(n.client, robustness.Request{Kind: robustness.OpExpire, Lease: lease}, call, robustness.Response{Unknown: true}, 0)
		}
		n.c.SetClockOffset(l, 2*leaseTTL*time.Second)
		time.Sleep(f.Hold)
		n.c.SetClockOffset(l, 0)
	}
}

// recover undoes every fault: network healed, every node running, no
// delay or clock offset.
func (n *nemesis) recover() {
	n.c.Heal()
	for i := range n.reg.nodes {
		n.c.SetApplyDelay(i, 0)
		n.c.SetClockOffset(i, 0)
		if n.c.Node(i) == nil {
			n.c.Restart(i)
		}
	}
	n.refresh()
}
