package kvstore

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
)

// The server half of node-to-node calls: the handler the transport runs
// for each call another member makes (forward.go is the calling half). It
// sits above the features it dispatches to (proposals, read index,
// membership, join, removal, leases), which call only downward, into
// forward.go, to reach the leader themselves.

// handleRPC answers the calls of other members. It runs on a transport
// goroutine per call; ctx ends when the caller gives up or the node closes.
func (n *Node) handleRPC(ctx context.Context, data []byte) []byte {
	var req wire.Request
	reply := &wire.Reply{}
	switch err := wire.DecodeRPC(data, &req); {
	case err != nil:
		reply.Err = toWireError(err)
	case req.Cluster != n.cfg.clusterToken:
		reply.Err = toWireError(fmt.Errorf("%w: a member of cluster %q called this member of %q", ErrClusterMismatch, req.Cluster, n.cfg.clusterToken))
	default:
		n.serveRPC(ctx, &req, reply)
	}
	out, err := wire.EncodeRPC(reply)
	if err != nil { // cannot happen for these types; answer something readable
		out, _ = wire.EncodeRPC(&wire.Reply{Err: toWireError(err)})
	}
	return out
}

// handleRPCStarting answers the calls that arrive while Open is still
// starting raft: every call kind needs raft, so each is refused with a
// *NotLeaderError naming no leader, which tells the caller that nothing was
// done and that it may retry once a leader is known (routeToLeader does).
func (n *Node) handleRPCStarting(ctx context.Context, data []byte) []byte {
	out, err := wire.EncodeRPC(&wire.Reply{Err: toWireError(&NotLeaderError{})})
	if err != nil { // cannot happen for this type
		panic(err)
	}
	return out
}

func (n *Node) serveRPC(ctx context.Context, req *wire.Request, reply *wire.Reply) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.closedCtx, cancel)
	defer stop()
	var err error
	switch req.Kind {
	case wire.RPCPropose:
		if n.raft.State() != raft.Leader {
			err = n.notLeader()
			break
		}
		if len(req.Command) > n.cfg.maxRequestBytes {
			err = fmt.Errorf("%w: %d bytes, limit %d", ErrRequestTooLarge, len(req.Command), n.cfg.maxRequestBytes)
			break
		}
		if err = n.refuseForwardedIfCorrupt(req.Command); err != nil {
			break
		}
		var res *applyResult
		res, reply.Index, err = n.proposeLocal(ctx, req.Command)
		if res != nil {
			reply.Result = resultToWire(res)
		}
		n.nudgeFollowers()
	case wire.RPCReadIndex:
		if n.raft.State() != raft.Leader {
			err = n.notLeader()
			break
		}
		if index, ok := n.readIndexConfirmedByAsker(req); ok {
			reply.Index = index
			n.metrics.readIndexAnswered(true)
			n.nudgeFollowers()
			break
		}
		r := n.reads.join()
		select {
		case <-r.done:
			reply.Index, err = r.index, r.err
			if err == nil {
				n.metrics.readIndexAnswered(false)
			}
			n.nudgeFollowers()
		case <-ctx.Done():
			err = ctx.Err()
		}
	case wire.RPCMembership:
		if req.Membership == nil {
			err = fmt.Errorf("%w: membership request without a body", ErrBadRPC)
			break
		}
		reply.Index, err = n.changeMembershipLocal(ctx, req.Membership)
		n.nudgeFollowers()
	case wire.RPCJoin:
		reply.Index, err = n.serveJoin(ctx, req.Membership)
	case wire.RPCRemoved:
		err = n.serveRemoved(ctx, req.Membership)
	case wire.RPCSetAddress:
		reply.Index, err = n.serveSetAddress(ctx, req.Membership)
	case wire.RPCIdentify:
		reply.MemberID = n.cfg.id
	case wire.RPCHashKV:
		err = n.serveHashKV(req.Revision, reply)
	case wire.RPCLease:
		if req.Lease == nil {
			err = fmt.Errorf("%w: lease request without a body", ErrBadRPC)
			break
		}
		if n.raft.State() != raft.Leader {
			err = n.notLeader()
			break
		}
		reply.Lease, err = n.leaseLocal(ctx, req.Lease)
	default:
		err = fmt.Errorf("%w: unknown call kind %d", ErrBadRPC, req.Kind)
	}
	if n.closedCtx.Err() != nil && err != nil {
		err = n.errClosed()
	}
	reply.Err = toWireError(err)
}
