package kvstore

import (
	"context"
	"errors"
	"time"

	"github.com/kvstore/kvstore/mvcc"
)

// Defragment rebuilds this member's in-memory key index with its nodes
// nearly full, handing back to the Go heap what half-full nodes hold: a
// bulk load, such as the load of a large keyspace, leaves the index at
// about twice the bytes of its entries (about 40 MB per million keys
// beyond them; DESIGN.md, "The key index"). It is etcd's defragmentation
// of its backend file: it affects only this member, is not replicated, and
// changes nothing any read, watch, hash or backup sees; reads and writes
// on this member wait while it runs, O(keys): 0.4 s of CPU per million keys
// (BENCHMARKS.md).
// A node restored from a snapshot starts with a packed index already.
//
// It returns ErrClosed (ErrRemoved on a removed member) on a node that no
// longer serves. ctx is checked before it starts; the rebuild itself is
// not interruptible. It logs the keys and the time taken at info level
// and records the time in etcd_disk_backend_defrag_duration_seconds. It is
// safe for concurrent use.
func (n *Node) Defragment(ctx context.Context) error {
	if n.closedCtx.Err() != nil {
		return n.errClosed()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	if err := n.fsm.kv.Defragment(); errors.Is(err, mvcc.ErrClosed) {
		return n.errClosed() // the store closes only with the node
	} else if err != nil {
		return err
	}
	took := time.Since(start)
	n.metrics.defragmented(took)
	n.logger().Info("defragmented the key index", "member", n.cfg.id, "keys", n.fsm.kv.Len(), "took", took)
	return nil
}
