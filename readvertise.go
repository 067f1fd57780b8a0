package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
)

// A member restarted at another address than the one its cluster's
// configuration records for it: its TCP listener was given port 0 and got
// a new port, or the operator moved it. Raft dials members at the recorded
// address only, so nobody reaches it there any more. It can still reach
// the others, and that is how it gets the record changed:
//
//  1. After Open, the member compares its entry in its latest
//     configuration with its transport's LocalAddr. If they differ it logs
//     "advertised address changed from X to Y" at warn level and asks for
//     the change (wire.MemberSetAddress): of itself if it leads (as a lone
//     member soon does: it needs no one's vote), otherwise of the leader it
//     knows and of every other member at their recorded addresses
//     (wire.RPCSetAddress), which forward it to the leader. Dialling out needs
//     no one to know where it is, and every reply comes back on the
//     connection it dialled. Until then it
//     hears no heartbeat and campaigns, but only with pre-votes, which
//     members that have a leader refuse: it does not disturb the cluster.
//  2. The leader first calls the new address (wire.RPCIdentify, with the
//     member's ID, which a transport checking peer identity verifies) and
//     records it only if that member answers there: an address that does
//     not reach the member (a wrong WithAdvertiseAddr) must not replace
//     one that may still work. Then it commits the member's entry with the
//     new address and the same suffrage (raft's AddVoter or AddNonvoter on
//     an existing ID only changes its address; raft v1.7.3 then points its
//     replication at the new address), and reaches the member again.
//  3. The member retries, backing off, until the configuration records its
//     address, it leaves the configuration, or it closes.
//
// Every other member's recorded address must still be right: a cluster
// whose members all moved at once has nobody to ask, and must be started
// at the old addresses (then moved one member at a time) or rebuilt.

// Readvertise timing: the first retry waits an election timeout, each next
// one twice as long, up to readvertiseMaxWaits election timeouts; one call
// may take readvertiseCallTimeouts election timeouts, at least
// readvertiseMinCall.
const (
	readvertiseMaxWaits     = 32
	readvertiseCallTimeouts = 10
	readvertiseMinCall      = 5 * time.Second
)

// errNotRecorded ends the readvertise goroutine: this member is no longer
// in its configuration (it was removed).
var errNotRecorded = errors.New("kvstore: this member is not in its configuration")

// runReadvertise is the goroutine that, when this member's recorded
// address is not its transport's, has it changed (see above). Open starts
// it on a node restarted from existing state; it ends when the address is
// recorded, when the member is no longer in the configuration, or when the
// node closes.
func (n *Node) runReadvertise() {
	ctx := n.closedCtx
	local := string(n.cfg.transport.LocalAddr())
	self, _, err := n.selfInConfiguration(ctx)
	if err != nil || self == nil || string(self.Address) == local {
		return
	}
	recorded := string(self.Address)
	n.logger().Warn(fmt.Sprintf("advertised address changed from %s to %s", recorded, local), "member", n.cfg.id)
	m := &wire.Membership{Op: wire.MemberSetAddress, ID: n.cfg.id, Address: local}
	wait := n.cfg.electionTimeout
	for attempt := 1; ; attempt++ {
		_, changed := n.lead.get()
		err := n.askToReadvertise(ctx, m)
		switch {
		case err == nil:
			n.logger().Info("the cluster records this member's new address", "member", n.cfg.id, "address", local)
			return
		case errors.Is(err, errNotRecorded), n.closedCtx.Err() != nil:
			return
		case attempt == 1:
			n.logger().Warn("the cluster does not record this member's new address yet; retrying until it does", "member", n.cfg.id, "address", local, "err", err)
		default:
			n.logger().Debug("asking the cluster to record this member's new address", "member", n.cfg.id, "attempt", attempt, "err", err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-changed: // a leader to ask, or this member leads
		case <-timer.C:
		case <-n.closed:
		}
		timer.Stop()
		wait = min(2*wait, readvertiseMaxWaits*n.cfg.electionTimeout)
	}
}

// askToReadvertise makes one round of asking for m, this member's new
// address: nil once the configuration records it, errNotRecorded if this
// member left the configuration. A leader's own answer ends the round;
// a member that cannot be reached, or that finds no leader, makes it ask
// the next.
func (n *Node) askToReadvertise(ctx context.Context, m *wire.Membership) error {
	cf := n.raft.GetConfiguration()
	if err := n.waitFuture(ctx, cf); err != nil {
		return err
	}
	var self *raft.Server
	var others []string
	_, leaderAddr := n.Leader()
	if leaderAddr != "" && leaderAddr != m.Address {
		others = append(others, leaderAddr)
	}
	for _, s := range cf.Configuration().Servers {
		switch {
		case string(s.ID) == m.ID:
			self = &s
		case string(s.Address) != leaderAddr:
			others = append(others, string(s.Address))
		}
	}
	switch {
	case self == nil:
		return errNotRecorded
	case string(self.Address) == m.Address:
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(readvertiseCallTimeouts*n.cfg.electionTimeout, readvertiseMinCall))
	defer cancel()
	if n.raft.State() == raft.Leader {
		_, err := n.changeMembershipLocal(ctx, m)
		return err
	}
	if len(others) == 0 {
		return ErrNoLeader // a lone member that does not lead yet
	}
	var errs []error
	for _, addr := range others {
		reply, err := n.call(ctx, addr, &wire.Request{Kind: wire.RPCSetAddress, Membership: m})
		if err == nil {
			if err = fromWireError(reply.Err); err == nil {
				return nil
			}
			if errors.Is(err, ErrMemberExists) || errors.Is(err, ErrMemberNotFound) || errors.Is(err, ErrInvalidMember) {
				return err // the leader's answer
			}
		}
		errs = append(errs, fmt.Errorf("via %s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// serveSetAddress forwards a member's request to record its new address
// to the leader (wire.RPCSetAddress).
func (n *Node) serveSetAddress(ctx context.Context, m *wire.Membership) (uint64, error) {
	if m == nil || m.Op != wire.MemberSetAddress {
		return 0, fmt.Errorf("%w: address request without an address to record", ErrBadRPC)
	}
	return n.changeMembershipIndex(ctx, m)
}
