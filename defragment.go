package kvstore

import (
	"context"
	"errors"
	"time"

	"github.com/kvstore/kvstore/mvcc"
)

// Defragment rebuilds this member's in-memory key index with its nodes
// nearly full, handing back to the Go heap what half-full nodes hold: a
// load in key order leaves the index at about twice the bytes of its
// entries, some 30 MB per million keys more than a packed one (DESIGN.md,
// "The key index packed"; BENCHMARKS.md, "Restart and memory"). A node
// restored from a snapshot, at Open or from its leader, starts packed.
//
// It is etcd's defragmentation of its backend file: it affects only this
// member, is not replicated, and changes nothing any read, watch, hash or
// backup sees. Reads and writes on this member, and its applying of the
// log, wait while it runs: O(keys), about 0.4 s of CPU per million keys.
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
