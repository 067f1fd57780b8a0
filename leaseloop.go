package kvstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/lease"
)

// The leader's side of leases: renewals, TimeToLive, and a loop that
// revokes expired leases (rate-limited, as etcd: 1,000 a second) and logs
// checkpoints of remaining TTLs, so that a new leader neither revives a
// lease for a full TTL nor kills one early.

// leaseTick bounds how late an expired lease is noticed (etcd checks
// every 500 ms).
const leaseTick = 500 * time.Millisecond

// maxCheckpointsPerCommand splits large checkpoints into several log
// entries (etcd's batch limit).
const maxCheckpointsPerCommand = 1000

// leaseCall runs a lease request on the leader, forwarding it from other
// members. Renewals are not writes: a lost one is retried by KeepAlive.
func (n *Node) leaseCall(ctx context.Context, req *wire.LeaseRequest) (*wire.LeaseReply, error) {
	if n.closedCtx.Err() != nil {
		return nil, n.errClosed()
	}
	reply, err := onLeader(n, ctx, &wire.Request{Kind: wire.RPCLease, Lease: req},
		func() (*wire.LeaseReply, error) { return n.leaseLocal(ctx, req) },
		func(r *wire.Reply) *wire.LeaseReply { return r.Lease })
	if err == nil && reply == nil {
		err = fmt.Errorf("%w: lease reply without a body", ErrBadRPC)
	}
	return reply, err
}

// leaseLocal answers a lease request on this node, which must lead.
func (n *Node) leaseLocal(ctx context.Context, req *wire.LeaseRequest) (*wire.LeaseReply, error) {
	switch req.Op {
	case wire.LeaseKeepAlive:
		ttl, err := n.renew(ctx, lease.ID(req.ID))
		return &wire.LeaseReply{TTL: ttl}, err
	case wire.LeaseTimeToLive:
		return n.timeToLive(ctx, lease.ID(req.ID), req.Keys)
	}
	return nil, fmt.Errorf("%w: unknown lease request %d", ErrBadRPC, req.Op)
}

// renew restarts a lease's deadline. When the table holds a checkpoint of
// the lease, it is cleared through the log before the renewal is
// acknowledged, so that a new leader does not start the lease from the
// stale remaining TTL. The clear is enqueued under leaseOrder, in order
// with the checkpoints.
func (n *Node) renew(ctx context.Context, id lease.ID) (int64, error) {
	n.leaseOrder.Lock()
	ttl, clear, err := n.fsm.deadlines().Renew(id, n.cfg.hooks.now())
	var f raft.ApplyFuture
	if err == nil && clear {
		f, err = n.applyCheckpoints([]lease.Checkpoint{{ID: id, Remaining: 0}})
	}
	n.leaseOrder.Unlock()
	switch {
	case errors.Is(err, lease.ErrNotLeader):
		return 0, n.notLeader()
	case errors.Is(err, lease.ErrLeaseExpired):
		return 0, fmt.Errorf("%w: %w", ErrLeaseNotFound, err)
	case err != nil:
		return 0, err
	case f != nil:
		if err := n.waitFuture(ctx, f); err != nil {
			return 0, err
		}
	}
	return ttl, nil
}

// timeToLive reads the table after a read index and the remaining TTL from
// the leader's deadlines.
func (n *Node) timeToLive(ctx context.Context, id lease.ID, withKeys bool) (*wire.LeaseReply, error) {
	if err := n.readIndex(ctx); err != nil {
		return nil, err
	}
	l, keys, rev, ok := n.fsm.leaseInfo(id, withKeys)
	reply := &wire.LeaseReply{Revision: rev, TTL: -1}
	if !ok {
		return reply, nil
	}
	reply.GrantedTTL, reply.TTL = l.TTL, l.TTL
	if left, tracked := n.fsm.deadlines().Remaining(id, n.cfg.hooks.now()); tracked {
		reply.TTL = int64((left + time.Second - 1) / time.Second)
	}
	for _, k := range keys {
		reply.KeyList = append(reply.KeyList, []byte(k))
	}
	return reply, nil
}

// applyCheckpoints enqueues checkpoint commands (in chunks) and returns
// the future of the last.
func (n *Node) applyCheckpoints(cps []lease.Checkpoint) (raft.ApplyFuture, error) {
	var f raft.ApplyFuture
	for len(cps) > 0 {
		chunk := cps[:min(len(cps), maxCheckpointsPerCommand)]
		cps = cps[len(chunk):]
		c := &wire.Command{Kind: wire.CmdLeaseCheckpoint}
		for _, cp := range chunk {
			c.Checkpoints = append(c.Checkpoints, wire.Checkpoint{ID: int64(cp.ID), Remaining: cp.Remaining})
		}
		data, err := wire.EncodeCommand(c)
		if err != nil {
			return nil, err
		}
		f = n.raft.Apply(data, 0)
	}
	return f, nil
}

// runLeases revokes expired leases and logs checkpoints while this node
// leads, until it closes. It proposes without waiting: a revoke that fails
// is reported again by the Expirer after its retry interval.
func (n *Node) runLeases() {
	limiter := lease.NewRateLimiter(lease.DefaultRevokesPerSecond, lease.DefaultRevokesPerSecond)
	nextCheckpoint := n.cfg.hooks.now().Add(n.cfg.leaseCheckpointInterval)
	timer := time.NewTimer(leaseTick)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-n.closed:
			return
		}
		now := n.cfg.hooks.now()
		if n.fsm.deadlines().Leading() {
			ids := n.fsm.deadlines().Expired(now, limiter.Available(now))
			limiter.Take(now, len(ids))
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			for _, id := range ids {
				if data, err := wire.EncodeCommand(&wire.Command{Kind: wire.CmdLeaseRevoke, LeaseID: int64(id)}); err == nil {
					n.raft.Apply(data, 0)
				}
			}
			n.metrics.leaseRevokesProposed(len(ids))
			if !now.Before(nextCheckpoint) {
				n.leaseOrder.Lock()
				n.applyCheckpoints(n.fsm.deadlines().Checkpoints(now))
				n.leaseOrder.Unlock()
			}
		}
		if !now.Before(nextCheckpoint) {
			nextCheckpoint = now.Add(n.cfg.leaseCheckpointInterval)
		}
		wait := min(leaseTick, nextCheckpoint.Sub(now))
		if next, ok := n.fsm.deadlines().NextDeadline(); ok {
			wait = min(wait, max(next.Sub(now), time.Millisecond))
		}
		timer.Reset(wait)
	}
}
