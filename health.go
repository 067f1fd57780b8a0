package kvstore

import (
	"context"
	"fmt"
	"strings"
)

// A node's health checks, for a host's probes: etcd 3.6 serves them as
// /livez and /readyz (examples/node does too). Liveness asks only whether
// the node still serves at all, so that a probe restarts a process that
// is stuck, not one cut off from its cluster; readiness asks whether it
// can serve clients correctly now, so that a load balancer sends traffic
// elsewhere while it cannot.

// healthKey is the key the read checks read, count only; it need not
// exist.
const healthKey = "/kvstore/health"

// HealthCheck is one named check of a node's health. Check returns nil
// when it passes; it honours ctx's deadline.
type HealthCheck struct {
	// Name is the check's name, as etcd's probes name theirs
	// (serializable_read, linearizable_read, ...).
	Name  string
	Check func(ctx context.Context) error
}

// LiveChecks returns the checks that tell whether the node is alive:
// "serializable_read", a read of this member's own state, which needs no
// other member. It fails only once the node is closed (or its state cannot
// be read), as etcd's /livez.
func (n *Node) LiveChecks() []HealthCheck {
	return []HealthCheck{{Name: "serializable_read", Check: n.checkSerializableRead}}
}

// ReadyChecks returns the checks that tell whether the node is ready to
// serve clients, in the order they should run:
//
//   - "leader": the node knows a leader (it is not cut off, and its
//     cluster is not electing one);
//   - "caught_up": the node has applied what its cluster had committed by
//     the time it started: until then (a restart replaying its log, a new
//     member receiving a snapshot) its serializable reads are behind;
//   - "serializable_read": its own state can be read;
//   - "linearizable_read": a read-index round with the leader succeeds, so
//     the leader holds a quorum and this node has applied up to it;
//   - "data_corruption": no CORRUPT alarm is in force in this member's
//     name (etcd's check of the same name fails on any, as etcd stops
//     every member; kvstore's other members go on serving, see
//     corruption.go);
//   - "no_space": no NOSPACE alarm is in force: the cluster refuses writes
//     that add data until an operator compacts and disarms it. etcd's
//     /readyz has no such check (its /health fails on it); a host that
//     wants read traffic during a NOSPACE alarm excludes it (examples/node:
//     /readyz?exclude=no_space).
//
// The alarm checks read this member's applied state. The read checks
// read it even under a CORRUPT alarm of this member's, which client reads
// refuse (data_corruption reports that alarm): so a corrupt member stays
// alive, and a probe does not restart it over and over while an operator
// repairs it, the alarm being in the replicated state.
func (n *Node) ReadyChecks() []HealthCheck {
	return []HealthCheck{
		{Name: "leader", Check: n.checkLeader},
		{Name: "data_corruption", Check: n.checkNotCorrupt},
		{Name: "no_space", Check: n.checkNoAlarm(AlarmNoSpace)},
		{Name: "caught_up", Check: n.checkCaughtUp},
		{Name: "serializable_read", Check: n.checkSerializableRead},
		{Name: "linearizable_read", Check: n.checkLinearizableRead},
	}
}

// Ready runs ReadyChecks in order and returns nil if every one passes, else
// the first failure, wrapping ErrNotReady and naming the check. ctx bounds
// the whole run; a check that runs out of time fails.
func (n *Node) Ready(ctx context.Context) error {
	for _, c := range n.ReadyChecks() {
		if err := c.Check(ctx); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrNotReady, c.Name, err)
		}
	}
	return nil
}

// checkNoAlarm returns a check that fails while an alarm of kind is in
// force, naming the members that raised it.
func (n *Node) checkNoAlarm(kind AlarmKind) func(context.Context) error {
	return func(context.Context) error {
		if !n.fsm.alarmed(kind) {
			return nil
		}
		var members []string
		for _, a := range n.fsm.activeAlarms() {
			if a.Kind == kind {
				members = append(members, a.MemberID)
			}
		}
		return fmt.Errorf("alarm %s raised by %s", kind, strings.Join(members, ", "))
	}
}

func (n *Node) checkLeader(ctx context.Context) error {
	if info, _ := n.lead.get(); info.LeaderID == "" {
		return ErrNoLeader
	}
	return nil
}

// checkCaughtUp passes once one read-index round has succeeded since Open:
// the round takes the leader's commit index and waits until this node has
// applied it, which is what "caught up" means (raft's no-op entries never
// reach the state machine, so comparing indexes alone cannot tell).
// Passing once is enough: falling behind later shows in the read checks.
func (n *Node) checkCaughtUp(ctx context.Context) error {
	if n.caughtUp.Load() {
		return nil
	}
	if err := n.readIndex(ctx); err != nil {
		return fmt.Errorf("still applying the log after start (applied index %d, commit index %d): %w",
			n.fsm.appliedIndex(), n.raft.CommitIndex(), err)
	}
	n.caughtUp.Store(true)
	return nil
}

func (n *Node) checkSerializableRead(ctx context.Context) error {
	_, err := n.get(ctx, false, []byte(healthKey), WithSerializable(), WithCountOnly())
	return err
}

func (n *Node) checkLinearizableRead(ctx context.Context) error {
	_, err := n.get(ctx, false, []byte(healthKey), WithCountOnly())
	return err
}
