package kvstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/lease"
)

// Leases, as etcd's: a key put with WithLease(id) is deleted, with every
// other key of the lease and in one revision, when the lease is revoked or
// expires. Grants, revokes and checkpoints go through the log, so every
// member holds the same leases; only the leader keeps time (see
// leaseloop.go). A lease's TTL is at least the node's minimum, 1.5 election
// timeouts rounded up to whole seconds, so that a lease outlives a failover.

// LeaseGrantResponse answers Grant.
type LeaseGrantResponse struct {
	Header Header
	ID     int64
	// TTL is the granted TTL in seconds, raised to the minimum if lower.
	TTL int64
}

// LeaseRevokeResponse answers Revoke.
type LeaseRevokeResponse struct {
	Header Header
}

// LeaseKeepAliveResponse answers a renewal.
type LeaseKeepAliveResponse struct {
	Header Header
	ID     int64
	// TTL is the lease's full TTL, which it has again from the renewal on.
	TTL int64
}

// LeaseTimeToLiveResponse answers TimeToLive. An unknown (or revoked, or
// expired) lease is no error, as in etcd: TTL is -1.
type LeaseTimeToLiveResponse struct {
	Header Header
	ID     int64
	// TTL is the remaining TTL in seconds, rounded up; -1 for an unknown
	// lease.
	TTL int64
	// GrantedTTL is the TTL the lease was granted with.
	GrantedTTL int64
	// Keys are the lease's keys in order, with WithKeys.
	Keys [][]byte
}

// LeaseLeasesResponse answers Leases.
type LeaseLeasesResponse struct {
	Header Header
	// IDs of every live lease, ascending.
	IDs []int64
}

// LeaseOption modifies a Grant.
type LeaseOption func(*leaseOptions)

type leaseOptions struct{ id int64 }

// WithLeaseID asks Grant for a lease with this ID rather than one chosen by
// the cluster, as etcd's LeaseGrantRequest.ID does. Any ID but 0 may be
// asked for, negative ones too, as etcd grants them (SEMANTICS.md rule
// 18); the IDs the cluster chooses are positive.
func WithLeaseID(id int64) LeaseOption { return func(o *leaseOptions) { o.id = id } }

// Grant creates a lease of ttl seconds with an ID chosen by the cluster
// (or WithLeaseID's; ErrLeaseExists if that one is live). A ttl above
// lease.MaxTTL is ErrTTLTooLarge; one below the minimum (1.5 election
// timeouts, at least a second), zero and negative ones included, is raised
// to it, as etcd raises it (SEMANTICS.md rule 18). The response carries the
// TTL granted.
func (n *Node) Grant(ctx context.Context, ttl int64, opts ...LeaseOption) (*LeaseGrantResponse, error) {
	var o leaseOptions
	for _, opt := range opts {
		opt(&o)
	}
	id := o.id
	if id == 0 && len(opts) > 0 {
		return nil, fmt.Errorf("%w: %d", ErrInvalidLeaseID, id)
	}
	if ttl > lease.MaxTTL {
		return nil, fmt.Errorf("%w: %d s, limit %d s", ErrTTLTooLarge, ttl, lease.MaxTTL)
	}
	for {
		chosen := id
		if chosen == 0 {
			chosen = rand.Int64N(1<<62) + 1
		}
		res, err := n.propose(ctx, &wire.Command{Kind: wire.CmdLeaseGrant, LeaseID: chosen, TTL: ttl})
		if id == 0 && errors.Is(err, ErrLeaseExists) {
			continue // a chosen ID collided: nothing was granted, choose again
		}
		if err != nil {
			return nil, err
		}
		return &LeaseGrantResponse{Header: n.header(res.Revision), ID: chosen, TTL: res.LeaseTTL}, nil
	}
}

// Revoke ends a lease at once, deleting its keys in one revision.
// ErrLeaseNotFound if it does not exist (any more).
func (n *Node) Revoke(ctx context.Context, id int64) (*LeaseRevokeResponse, error) {
	res, err := n.propose(ctx, &wire.Command{Kind: wire.CmdLeaseRevoke, LeaseID: id})
	if err != nil {
		return nil, err
	}
	return &LeaseRevokeResponse{Header: n.header(res.Revision)}, nil
}

// KeepAliveOnce renews a lease once: it has its full TTL again from now.
// Renewals are made by the leader (forwarded from other members).
// ErrLeaseNotFound if the lease does not exist or has expired.
func (n *Node) KeepAliveOnce(ctx context.Context, id int64) (*LeaseKeepAliveResponse, error) {
	reply, err := n.leaseCall(ctx, &wire.LeaseRequest{Op: wire.LeaseKeepAlive, ID: id})
	if err != nil {
		return nil, err
	}
	return &LeaseKeepAliveResponse{Header: n.header(n.fsm.revision()), ID: id, TTL: reply.TTL}, nil
}

// TimeToLive reports a lease's remaining and granted TTL, and its keys
// WithKeys. It is answered by the leader, which keeps the time.
func (n *Node) TimeToLive(ctx context.Context, id int64, withKeys bool) (*LeaseTimeToLiveResponse, error) {
	reply, err := n.leaseCall(ctx, &wire.LeaseRequest{Op: wire.LeaseTimeToLive, ID: id, Keys: withKeys})
	if err != nil {
		return nil, err
	}
	return &LeaseTimeToLiveResponse{Header: n.header(reply.Revision), ID: id, TTL: reply.TTL, GrantedTTL: reply.GrantedTTL, Keys: reply.KeyList}, nil
}

// Leases lists the live leases. It is linearizable.
func (n *Node) Leases(ctx context.Context) (*LeaseLeasesResponse, error) {
	if err := n.readIndex(ctx); err != nil {
		return nil, err
	}
	ids, rev := n.fsm.leaseIDs()
	out := &LeaseLeasesResponse{Header: n.header(rev), IDs: make([]int64, len(ids))}
	for i, id := range ids {
		out.IDs[i] = int64(id)
	}
	return out, nil
}

// KeepAlive renews a lease about every third of its TTL until ctx ends,
// the node closes, or the lease is gone, and then closes the returned
// channel. Each renewal's response replaces any the caller has not taken
// yet, so a caller that stops reading never stalls the renewals. Failed
// renewals (no leader for a while) are retried sooner.
func (n *Node) KeepAlive(ctx context.Context, id int64) (<-chan *LeaseKeepAliveResponse, error) {
	first, err := n.KeepAliveOnce(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make(chan *LeaseKeepAliveResponse, 1)
	out <- first
	started := n.goAsync(func() {
		defer close(out)
		wait := renewInterval(first.TTL)
		for {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			case <-n.closed:
				return
			}
			resp, err := n.KeepAliveOnce(ctx, id)
			switch {
			case errors.Is(err, ErrLeaseNotFound), errors.Is(err, ErrClosed), ctx.Err() != nil:
				return
			case err != nil:
				wait = n.cfg.heartbeatTimeout
				continue
			}
			select { // replace a response the caller has not taken
			case <-out:
			default:
			}
			out <- resp
			wait = renewInterval(resp.TTL)
		}
	})
	if !started {
		close(out)
	}
	return out, nil
}

// renewInterval is how long KeepAlive waits between renewals: a third of
// the TTL, as etcd's client does.
func renewInterval(ttl int64) time.Duration {
	return max(time.Duration(ttl)*time.Second/3, 100*time.Millisecond)
}
