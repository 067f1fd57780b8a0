package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/transport"
)

// Writes and membership changes need the leader. A node that leads
// proposes them itself; any other node forwards them to the leader through
// the transport, then, for writes, waits until it has applied the write
// itself, so that a caller reads its own writes on the node it wrote
// through.
//
// A forwarded request is retried, until its context ends, only when it
// certainly did nothing: no leader is known, the leader answered that it
// was no longer leader before proposing (raft returns ErrNotLeader for
// entries it never appended), or the transport could not deliver the
// request (transport.ErrNotDelivered: a refused dial, a cut link, a closed
// peer). Each retry waits for the leadership to change, or half a heartbeat
// timeout, so a follower whose leader died forwards to the next one as soon
// as it is elected. Running out of time while retrying is ErrNoLeader or
// ErrLeaderUnreachable, with the context's error: the request was not
// sent. Any other failure after sending — a lost reply, a connection lost
// with the request on it, a leader that lost leadership after appending —
// may have committed the write and is reported as ErrOutcomeUnknown, never
// retried.

// proposeCommand commits c through raft and returns its result, applied
// on this node. A write already proposed when ctx ends may still commit.
func (n *Node) proposeCommand(ctx context.Context, c *wire.Command) (*applyResult, error) {
	if n.closedCtx.Err() != nil {
		return nil, n.errClosed()
	}
	if n.disk.Full() {
		// It could forward the write, but not apply it: its log cannot
		// grow, so the write would commit and the caller time out.
		return nil, n.errNoSpace()
	}
	if err := n.refuseCommandIfCorrupt(c); err != nil {
		return nil, err
	}
	c.AuthRevision = authRevisionFor(ctx, c)
	data, err := wire.EncodeCommand(c)
	if err != nil {
		return nil, err
	}
	if len(data) > n.cfg.maxRequestBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRequestTooLarge, len(data), n.cfg.maxRequestBytes)
	}
	if err := n.checkQuota(ctx, c, len(data)); err != nil {
		return nil, err
	}
	var index uint64 // to wait for when the leader was another node
	res, err := onLeader(n, ctx, &wire.Request{Kind: wire.RPCPropose, Command: data},
		func() (*applyResult, error) {
			res, _, err := n.proposeLocal(ctx, data) // applied here already
			return res, err
		},
		func(reply *wire.Reply) *applyResult {
			index = reply.Index
			return resultFromWire(reply.Result)
		})
	if err != nil {
		return nil, err
	}
	if err := n.waitApplied(ctx, index); err != nil {
		return nil, fmt.Errorf("kvstore: write committed at index %d but not yet applied on this node: %w", index, err)
	}
	return res, nil
}

// routeToLeader runs send against the leader: with "" when this node leads,
// else with the leader's address. It waits for a leader while there is
// none and retries when send reports that the target was not the leader or
// could not be reached (ErrLeaderUnreachable); every other error ends it.
func (n *Node) routeToLeader(ctx context.Context, send func(addr string) error) error {
	for {
		info, changed := n.lead.get()
		var err error
		switch {
		case n.raft.State() == raft.Leader:
			err = send("")
		case info.LeaderAddress != "":
			err = send(info.LeaderAddress)
		default:
			err = ErrNoLeader
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrLeaderUnreachable) {
			return err
		}
		select {
		case <-changed:
		case <-time.After(n.cfg.heartbeatTimeout / 2):
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-n.closed:
			return n.errClosed()
		}
	}
}

// onLeader runs a request on the leader, through routeToLeader: local when
// this node leads, else req sent to the leader, whose reply fromReply turns
// into the result (it runs only for a reply that carries no error).
func onLeader[T any](n *Node, ctx context.Context, req *wire.Request, local func() (T, error), fromReply func(*wire.Reply) T) (T, error) {
	var res T
	err := n.routeToLeader(ctx, func(addr string) error {
		if addr == "" {
			var err error
			res, err = local()
			return err
		}
		reply, err := n.callLeader(ctx, addr, req)
		if err == nil {
			res = fromReply(reply)
		}
		return err
	})
	return res, err
}

// callLeader sends req to the leader at addr. A call the transport could
// not deliver is ErrLeaderUnreachable: nothing happened. A call that was
// lost after it may have been delivered, or that the leader could not
// finish, may still take effect there: it is ErrOutcomeUnknown (or the
// caller's deadline). The leader's own answers come back as they are,
// matchable with errors.Is.
func (n *Node) callLeader(ctx context.Context, addr string, req *wire.Request) (*wire.Reply, error) {
	reply, err := n.call(ctx, addr, req)
	switch {
	case err == nil:
		err = fromWireError(reply.Err)
		if errors.Is(err, ErrClosed) {
			// Not this node's ErrClosed: the caller must not take it so.
			err = fmt.Errorf("%w: the leader closed (%s)", ErrOutcomeUnknown, err)
		}
		return reply, err
	case n.closedCtx.Err() != nil:
		return nil, n.errClosed()
	case errors.Is(err, transport.ErrNotDelivered):
		return nil, fmt.Errorf("%w: %w", ErrLeaderUnreachable, err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w (the request may still take effect)", ctx.Err())
	case errors.Is(err, ErrBadRPC):
		return nil, err
	}
	return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

// proposeLocal proposes an encoded command on this node, which must lead,
// and returns its result and log index.
func (n *Node) proposeLocal(ctx context.Context, data []byte) (*applyResult, uint64, error) {
	timeout := time.Duration(0)
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
		if timeout <= 0 {
			return nil, 0, context.DeadlineExceeded
		}
	}
	future := n.raft.Apply(data, timeout)
	if err := n.waitFuture(ctx, future); err != nil {
		return nil, 0, err
	}
	res, ok := future.Response().(*applyResult)
	if !ok {
		return nil, 0, fmt.Errorf("kvstore: unexpected apply response %T", future.Response())
	}
	res = takeResult(res)
	return res, future.Index(), res.Err
}

// takeResult moves an apply result out of the struct raft's future points
// to, leaving that empty. The future lives on after the call: raft hands
// the leader's log store pointers into its futures, and memLogStore keeps
// them for every retained entry (raft's LogCache did for the last 1,024),
// which kept each write's whole result reachable, events and txn responses
// included. Only the proposer reads a response, once, after the FSM is
// done with it.
func takeResult(res *applyResult) *applyResult {
	out := *res
	*res = applyResult{}
	return &out
}

// call sends req to the member at addr and decodes its reply. Transport
// failures are returned as they are; the reply's own error is left in it.
// Every call goes to the leader, so the transport is told the leader's ID
// when addr is still the leader's address (a transport that authenticates
// peers checks it); otherwise the ID is left empty, unknown.
func (n *Node) call(ctx context.Context, addr string, req *wire.Request) (*wire.Reply, error) {
	req.Cluster = n.cfg.clusterToken
	data, err := wire.EncodeRPC(req)
	if err != nil {
		return nil, err
	}
	id, leaderAddr := n.Leader()
	if leaderAddr != addr {
		id = ""
	}
	raw, err := n.cfg.transport.Call(ctx, raft.ServerID(id), raft.ServerAddress(addr), data)
	if err != nil {
		return nil, err
	}
	var reply wire.Reply
	if err := wire.DecodeRPC(raw, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}
