package kvstore

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"
)

// Snapshot takes a raft snapshot of this node's state now, instead of
// waiting for WithSnapshots' threshold, and truncates the log behind it,
// keeping WithTrailingLogs entries. Operators use it before a backup or
// to shrink a long log; tests use it (with few trailing logs) to make a
// lagging follower install a snapshot instead of catching up from the log.
//
// It returns once the snapshot is stored; a node that has applied nothing
// yet has nothing to snapshot and returns nil. It affects only this node.
// If ctx ends first the snapshot may still complete.
func (n *Node) Snapshot(ctx context.Context) error {
	if n.closedCtx.Err() != nil {
		return n.errClosed()
	}
	err := n.waitFuture(ctx, n.raft.Snapshot())
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return err
}
