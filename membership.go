package kvstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/transport"
)

// Member is one member of the cluster.
type Member struct {
	ID      string
	Address string
	// Learner reports a non-voting member: it receives the log and serves
	// serializable reads but does not vote or count towards a quorum.
	Learner bool
	// Name and ClientURLs are what the member published about itself
	// (WithMemberName, WithClientURLs): empty until it has, as for a
	// member added but not started yet.
	Name       string
	ClientURLs []string
}

// Members returns the cluster's members as this node knows them: the latest
// configuration in its log, which may not be committed yet.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := n.waitFuture(ctx, f); err != nil {
		return nil, err
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		attrs := n.fsm.memberAttributes(string(s.ID))
		out = append(out, Member{ID: string(s.ID), Address: string(s.Address), Learner: s.Suffrage != raft.Voter,
			Name: attrs.Name, ClientURLs: slices.Clone(attrs.ClientURLs)})
	}
	return out, nil
}

// AddVoter adds a voting member, like etcd's member add. The new node must
// be started (Open with its ID and transport, without WithBootstrap); it
// catches up from the leader. address is the one the new node's transport
// reports as its LocalAddr; one the transport could never dial (see
// transport.AddressValidator) is refused with ErrInvalidMember and
// ErrInvalidAddress, by this member and again by the leader. Any member may
// be asked; it returns once the change is committed.
func (n *Node) AddVoter(ctx context.Context, id, address string) error {
	return n.changeMembership(ctx, &wire.Membership{Op: wire.MemberAddVoter, ID: id, Address: address})
}

// AddLearner adds a non-voting member, which catches up without affecting
// the quorum; promote it with PromoteLearner once it has. Its address is
// checked as AddVoter's.
func (n *Node) AddLearner(ctx context.Context, id, address string) error {
	return n.changeMembership(ctx, &wire.Membership{Op: wire.MemberAddLearner, ID: id, Address: address})
}

// PromoteLearner makes a learner a voter. As etcd, the leader refuses,
// with ErrLearnerNotReady, a learner whose log it has not seen reach nine
// tenths of its own (learnerready.go); a voter is ErrNotLearner.
func (n *Node) PromoteLearner(ctx context.Context, id string) error {
	return n.changeMembership(ctx, &wire.Membership{Op: wire.MemberPromote, ID: id})
}

// RemoveMember removes a member. Removing the leader makes it step down
// once the change commits.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	return n.changeMembership(ctx, &wire.Membership{Op: wire.MemberRemove, ID: id})
}

// SetMemberAddress records address as the peer address of member id,
// keeping its suffrage, like etcd's member update. The leader first calls
// the member at address and records it only if the member answers there
// as id, of this cluster: an address that does not reach the member must
// not replace one that may still work. A member restarted at a new
// address has it recorded by itself (see Open), so SetMemberAddress is for
// a member that answers at both, such as one whose host got a new name.
// Recording the address already recorded does nothing. An unknown id is
// ErrMemberNotFound; an address another member has, ErrMemberExists; one
// the transport could never dial, ErrInvalidMember and ErrInvalidAddress.
func (n *Node) SetMemberAddress(ctx context.Context, id, address string) error {
	return n.changeMembership(ctx, &wire.Membership{Op: wire.MemberSetAddress, ID: id, Address: address})
}

// TransferLeadership asks the leader to hand leadership to the voter id,
// or to the most up-to-date voter when id is empty, and returns once the
// transfer is done.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.changeMembership(ctx, &wire.Membership{Op: wire.MemberTransfer, ID: id})
}

func (n *Node) changeMembership(ctx context.Context, m *wire.Membership) error {
	_, err := n.changeMembershipIndex(ctx, m)
	return err
}

// changeMembershipIndex makes a membership change through the leader and
// returns the index of the configuration entry, once this node has it.
func (n *Node) changeMembershipIndex(ctx context.Context, m *wire.Membership) (uint64, error) {
	if n.closedCtx.Err() != nil {
		return 0, n.errClosed()
	}
	if err := checkMembership(m, n.cfg.transport); err != nil {
		return 0, err
	}
	index, err := onLeader(n, ctx, &wire.Request{Kind: wire.RPCMembership, Membership: m},
		func() (uint64, error) { return n.changeMembershipLocal(ctx, m) },
		func(reply *wire.Reply) uint64 { return reply.Index })
	if err != nil {
		return 0, err
	}
	if m.Op == wire.MemberRemove && m.ID == n.cfg.id {
		// A removed member may never hear that its removal committed.
		return index, nil
	}
	// Let this node's view (Members) include the change before returning.
	return index, n.waitApplied(ctx, index)
}

// checkMembership refuses a change that no configuration could take: one
// without a member ID, or one recording an address that t could never dial.
// Both the member asked and the leader check.
func checkMembership(m *wire.Membership, t transport.Transport) error {
	if m.Op != wire.MemberTransfer && m.ID == "" {
		return fmt.Errorf("%w: empty member ID", ErrInvalidMember)
	}
	if m.Op == wire.MemberAddVoter || m.Op == wire.MemberAddLearner || m.Op == wire.MemberSetAddress {
		if err := checkPeerAddress(t, m.Address); err != nil {
			return fmt.Errorf("%w: member %q: %w", ErrInvalidMember, m.ID, err)
		}
	}
	return nil
}

// changeMembershipLocal makes a membership change on this node, which must
// lead. It checks the change against the configuration it read and makes
// raft refuse it if the configuration changed meanwhile.
func (n *Node) changeMembershipLocal(ctx context.Context, m *wire.Membership) (uint64, error) {
	if err := checkMembership(m, n.cfg.transport); err != nil {
		return 0, err
	}
	cf := n.raft.GetConfiguration()
	if err := n.waitFuture(ctx, cf); err != nil {
		return 0, err
	}
	prev := cf.Index()
	var found *raft.Server
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == m.ID {
			found = &s
		} else if m.Address != "" && string(s.Address) == m.Address {
			return 0, fmt.Errorf("%w: address %s is used by %s", ErrMemberExists, m.Address, s.ID)
		}
	}
	if found == nil && m.Op != wire.MemberAddVoter && m.Op != wire.MemberAddLearner && !(m.Op == wire.MemberTransfer && m.ID == "") {
		return 0, fmt.Errorf("%w: %q", ErrMemberNotFound, m.ID)
	}
	timeout := time.Duration(0)
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline), time.Nanosecond)
	}
	id := raft.ServerID(m.ID)
	var f raft.IndexFuture
	switch m.Op {
	case wire.MemberAddVoter, wire.MemberAddLearner:
		if found != nil {
			return 0, fmt.Errorf("%w: %q", ErrMemberExists, m.ID)
		}
		if m.Op == wire.MemberAddVoter {
			f = n.raft.AddVoter(id, raft.ServerAddress(m.Address), prev, timeout)
		} else {
			f = n.raft.AddNonvoter(id, raft.ServerAddress(m.Address), prev, timeout)
		}
	case wire.MemberPromote:
		if found.Suffrage == raft.Voter {
			return 0, fmt.Errorf("%w: %q", ErrNotLearner, m.ID)
		}
		if err := n.learnerReady(id); err != nil {
			return 0, err
		}
		f = n.raft.AddVoter(id, found.Address, prev, timeout)
	case wire.MemberSetAddress:
		if string(found.Address) == m.Address {
			return prev, nil // recorded already: a reply was lost, or another member forwarded it too
		}
		if err := n.confirmMemberAt(ctx, m.ID, m.Address); err != nil {
			return 0, err
		}
		// On an existing ID raft changes only the address: AddVoter keeps a
		// voter a voter, AddNonvoter a non-voter a non-voter.
		if found.Suffrage == raft.Voter {
			f = n.raft.AddVoter(id, raft.ServerAddress(m.Address), prev, timeout)
		} else {
			f = n.raft.AddNonvoter(id, raft.ServerAddress(m.Address), prev, timeout)
		}
	case wire.MemberRemove:
		f = n.raft.RemoveServer(id, prev, timeout)
	case wire.MemberTransfer:
		return 0, n.transferLeadership(ctx, found)
	default:
		return 0, fmt.Errorf("%w: unknown membership change %d", ErrBadRPC, m.Op)
	}
	if err := n.waitFuture(ctx, f); err != nil {
		return 0, err
	}
	if m.Op == wire.MemberRemove {
		if m.ID == n.cfg.id {
			n.markRemoved() // raft, having committed its own removal, stepped down
		} else {
			n.notifyRemoved(m.ID, string(found.Address), f.Index())
		}
	}
	return f.Index(), nil
}

func (n *Node) transferLeadership(ctx context.Context, to *raft.Server) error {
	var f raft.Future
	switch {
	case to == nil:
		f = n.raft.LeadershipTransfer()
	case to.Suffrage != raft.Voter:
		return fmt.Errorf("%w: %q is a learner and cannot lead", ErrInvalidMember, to.ID)
	case string(to.ID) == n.cfg.id:
		return nil // already leads
	default:
		f = n.raft.LeadershipTransferToServer(to.ID, to.Address)
	}
	if err := n.waitFuture(ctx, f); err != nil {
		return err
	}
	// raft's future resolves once this node has stepped down, before the
	// new leader's first heartbeat: wait, as etcd's MoveLeader does, until
	// this node sees the member it handed over to (any other member
	// without a target) lead, so that the caller's next request finds it.
	for {
		info, changed := n.lead.get()
		if info.LeaderID != "" && (to == nil && info.LeaderID != n.cfg.id || to != nil && info.LeaderID == string(to.ID)) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("kvstore: leadership handed over, but no new leader seen yet: %w", ctx.Err())
		case <-n.closed:
			return n.errClosed()
		}
	}
}

// confirmMemberAt checks, on the leader, that the member id answers at
// addr before addr replaces its recorded address: it must be reachable
// there (and, through a transport that checks peer identity, hold id's
// certificate) and say it is id, of this cluster.
func (n *Node) confirmMemberAt(ctx context.Context, id, addr string) error {
	data, err := wire.EncodeRPC(&wire.Request{Kind: wire.RPCIdentify, Cluster: n.cfg.clusterToken})
	if err != nil {
		return err
	}
	raw, err := n.cfg.transport.Call(ctx, raft.ServerID(id), raft.ServerAddress(addr), data)
	if err != nil {
		return fmt.Errorf("kvstore: the leader cannot reach member %q at its new address %s, and keeps the recorded one: %w", id, addr, err)
	}
	var reply wire.Reply
	if err := wire.DecodeRPC(raw, &reply); err != nil {
		return err
	}
	if err := fromWireError(reply.Err); err != nil {
		return fmt.Errorf("kvstore: member %q at its new address %s: %w", id, addr, err)
	}
	if reply.MemberID != id {
		return fmt.Errorf("%w: %s answers as member %q, not %q", ErrInvalidMember, addr, reply.MemberID, id)
	}
	return nil
}
