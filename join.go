package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
)

// Joining a running cluster, driven by the new node:
//
//  1. It asks any member it can reach (wire.RPCJoin) to add it as a learner.
//     That member forwards the change to the leader. A member of another
//     cluster refuses with ErrClusterMismatch (the token travels with every
//     call).
//  2. It waits until it has caught up: a linearizable read round through
//     the leader, which returns once this node has applied everything
//     committed before the round — by log entries or a snapshot.
//  3. Unless asked to stay a learner, it asks to be promoted to voter. A
//     learner counts for nothing in quorums, so a slow catch-up never
//     costs the cluster its availability, and the node gets its vote only
//     once it can use it. The leader promotes only a learner it has seen
//     catch up (learnerready.go); the node asks until it has.
//
// Every step is idempotent, so a Join interrupted at any point (a lost
// reply, a crash and restart) is finished by calling it again.

// JoinOption configures [Node.Join].
type JoinOption func(*joinConfig)

type joinConfig struct{ learner bool }

// JoinAsLearner makes [Node.Join] leave the node a learner: it receives
// the log and serves reads but does not vote. Promote it later with
// [Node.PromoteLearner].
func JoinAsLearner() JoinOption { return func(c *joinConfig) { c.learner = true } }

// Join makes this node, opened with an empty data dir and no WithBootstrap,
// a member of the cluster that the members at memberAddrs belong to, under
// this node's ID and its transport's address. Any one reachable member is
// enough; they are tried in order. Join returns once the node has caught
// up with the cluster and, unless JoinAsLearner, has been promoted to
// voter.
//
// Join on a node that is already a member finishes what a previous Join
// left undone (a promotion) and otherwise returns nil, so a restarted node
// may call it unconditionally. It fails with ErrClusterMismatch if the
// members belong to another cluster token, ErrMemberExists if the ID or
// the address is already taken by another member, ErrInvalidMember (and
// ErrInvalidAddress) if an address in memberAddrs, or this node's own, is
// one the transport could never dial, and with the transport's error
// (matching transport.ErrUnreachable) if no member answered.
func (n *Node) Join(ctx context.Context, memberAddrs []string, opts ...JoinOption) error {
	var jc joinConfig
	for _, o := range opts {
		o(&jc)
	}
	if n.closedCtx.Err() != nil {
		return n.errClosed()
	}
	if len(memberAddrs) == 0 {
		return fmt.Errorf("%w: Join needs the address of at least one member", ErrInvalidMember)
	}
	for _, addr := range memberAddrs {
		if err := checkPeerAddress(n.cfg.transport, addr); err != nil {
			return fmt.Errorf("%w: Join: member address: %w", ErrInvalidMember, err)
		}
	}
	self, _, err := n.selfInConfiguration(ctx)
	if err != nil {
		return err
	}
	if self == nil {
		if err := n.askToJoin(ctx, memberAddrs); err != nil {
			return err
		}
	} else if self.Suffrage == raft.Voter || jc.learner {
		return nil
	}
	if err := n.readIndex(ctx); err != nil {
		return fmt.Errorf("kvstore: catching up after joining: %w", err)
	}
	if jc.learner {
		return nil
	}
	if err := n.promoteSelf(ctx); err != nil {
		return fmt.Errorf("kvstore: promoting after joining: %w", err)
	}
	return nil
}

// promoteSelf asks the leader to promote this node, which has caught up.
// The leader may not have seen that yet (ErrLearnerNotReady): it learns a
// learner's progress from the learner's answers to its appends, and after
// a snapshot from the next append, up to a commit timeout later; then
// promoteSelf asks again, every half heartbeat timeout, until ctx ends.
func (n *Node) promoteSelf(ctx context.Context) error {
	for {
		err := n.changeMembership(ctx, &wire.Membership{Op: wire.MemberPromote, ID: n.cfg.id})
		if errors.Is(err, ErrNotLearner) { // promoted by an earlier attempt
			return nil
		}
		if !errors.Is(err, ErrLearnerNotReady) {
			return err
		}
		select {
		case <-time.After(n.cfg.heartbeatTimeout / 2):
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-n.closed:
			return n.errClosed()
		}
	}
}

// askToJoin sends wire.RPCJoin to the first member of addrs that answers.
func (n *Node) askToJoin(ctx context.Context, addrs []string) error {
	req := &wire.Request{Kind: wire.RPCJoin, Membership: &wire.Membership{
		Op:      wire.MemberAddLearner,
		ID:      n.cfg.id,
		Address: string(n.cfg.transport.LocalAddr()),
	}}
	var errs []error
	for _, addr := range addrs {
		reply, err := n.call(ctx, addr, req)
		if err == nil {
			// The member's answer is final, unless it found no leader.
			if err = fromWireError(reply.Err); !errors.Is(err, ErrNoLeader) {
				return err
			}
		}
		errs = append(errs, fmt.Errorf("via %s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("kvstore: no member could add this node: %w", errors.Join(errs...))
}

// serveJoin adds the member described by m as a learner, through the
// leader. Asking again for a member already added at the same address is
// not an error: the joiner's earlier reply may have been lost.
func (n *Node) serveJoin(ctx context.Context, m *wire.Membership) (uint64, error) {
	if m == nil || m.Op != wire.MemberAddLearner {
		return 0, fmt.Errorf("%w: join request without a learner to add", ErrBadRPC)
	}
	index, err := n.changeMembershipIndex(ctx, m)
	if errors.Is(err, ErrMemberExists) {
		cf := n.raft.GetConfiguration()
		if werr := n.waitFuture(ctx, cf); werr != nil {
			return 0, werr
		}
		for _, s := range cf.Configuration().Servers {
			if string(s.ID) == m.ID && string(s.Address) == m.Address {
				return cf.Index(), nil
			}
		}
	}
	return index, err
}
