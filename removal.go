package kvstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/kvstore/kvstore/internal/wire"
)

// A member removed from its cluster must stop: it holds no vote and gets no
// more log entries, so whatever it would serve goes stale, and a restart
// with its old identity would have it campaign against a configuration it
// is not part of. kvstore makes removal final:
//
//   - The leader that commits a removal tells the removed member, best
//     effort (it may be down or cut off). A leader that removes itself
//     knows it from its own commit: raft steps down (not ShutdownOnRemove,
//     see options.go's raftConfig) and answers the removal's future.
//   - The removed member records the removal in its data dir
//     (kvstore.meta, or its MemoryStorage) before anything else, closes
//     [Node.Removed], and stops serving: every call fails with ErrRemoved.
//   - Open refuses a data dir marked removed with ErrRemoved; the data must
//     be wiped before the node joins again, under any ID.
//
// A member that was down when it was removed never hears of it. When it
// comes back it is refused votes (raft ignores candidates outside its
// configuration) and stays leaderless until it is wiped and joined again.

// notifyRemovedTimeout bounds the leader's best-effort message to a member
// it removed.
const notifyRemovedTimeout = 2 * time.Second

// Removed returns a channel that is closed when this node learns that it
// was removed from the cluster. The node stops serving at that moment:
// calls fail with ErrRemoved (which matches ErrClosed too) and raft stops;
// its owner should still call Close, which releases the rest.
func (n *Node) Removed() <-chan struct{} { return n.removedCh }

// markRemoved makes this node's removal final: recorded in its storage,
// announced on Removed, calls stopped and raft shut down. It runs on a
// transport handler (a removal notice, or the forwarded call through which
// a leader removed itself), so it blocks on nothing and leaves the
// transport open: the handler's reply still goes out. Close releases the
// transport and storage.
func (n *Node) markRemoved() {
	n.removeOnce.Do(func() {
		if err := n.storage.MarkRemoved(); err != nil {
			n.logger().Error("recording this node's removal", "err", err)
		}
		n.removed.Store(true)
		close(n.removedCh)
		n.logger().Warn("this node was removed from the cluster; it stops serving")
		n.stopServing()
		n.shutdownRaft() // not waited for here: that would close the transport under the handler
	})
}

// notifyRemoved tells the member at addr, just removed by this leader,
// that it is out. Best effort: it may be down or cut off, in which case it
// learns nothing (see above).
func (n *Node) notifyRemoved(id, addr string, index uint64) {
	n.goAsync(func() {
		ctx, cancel := context.WithTimeout(n.closedCtx, notifyRemovedTimeout)
		defer cancel()
		req := &wire.Request{Kind: wire.RPCRemoved, Membership: &wire.Membership{Op: wire.MemberRemove, ID: id, Index: index}}
		reply, err := n.call(ctx, addr, req)
		if err == nil {
			err = fromWireError(reply.Err)
		}
		if err != nil && n.closedCtx.Err() == nil {
			n.logger().Info("could not tell a removed member it is out", "member", id, "err", err)
		}
	})
}

// serveRemoved answers a leader's notice that this node was removed by the
// configuration entry at m.Index. The notice comes from an authenticated
// member of this cluster (the cluster token is checked before any call is
// served) and must name this node. It may arrive late, after an operator
// wiped this node and started it again under the same ID and address, so
// it is acted on only by the incarnation it removed: one whose
// configuration no longer lists it (it saw its removal), or still lists it
// from a log that does not hold the removal entry: one that ends before
// it, or that holds another entry at its index (an uncommitted tail from
// an older term, which the leader stopped replicating to this node before
// it could overwrite it). A node with no configuration yet, or one whose
// log holds the removal and lists it again (added since), ignores it.
func (n *Node) serveRemoved(ctx context.Context, m *wire.Membership) error {
	if m == nil || m.Op != wire.MemberRemove || m.ID != n.cfg.id {
		return fmt.Errorf("%w: removal notice for another member", ErrBadRPC)
	}
	// The configuration and the log's last index must be read as of the
	// same moment: raft appends entries between the two reads, so a
	// configuration that still lists this node beside a last index that
	// already holds the removal (appended just after the configuration was
	// read) would make the notice look meant for a later incarnation. Read
	// the index on both sides until it did not move in between.
	for {
		before := n.raft.LastIndex()
		self, members, err := n.selfInConfiguration(ctx)
		if err != nil {
			return err
		}
		if n.raft.LastIndex() != before {
			continue
		}
		if members > 0 && (self == nil || before < m.Index || !n.logHoldsRemoval(m.Index)) {
			n.markRemoved()
			return nil
		}
		n.logger().Info("not acting on a removal notice: this node's log does not show it as the incarnation removed",
			"removal_index", m.Index, "last_index", before, "members", members, "listed", self != nil)
		return nil
	}
}

// logHoldsRemoval reports whether this node's log, which reaches index,
// holds there the configuration entry that removed this node, or may have
// held it (the entry is compacted away, or cannot be read): a log that went
// past the removal and still lists this node was added to again since.
// The caller has read the configuration no earlier than the last index
// reached index, so an entry there is one raft had already taken into
// that configuration; only a removal entry replacing an older tail at that
// very moment, leaving the last index where it was, can still be taken
// for a later incarnation's (the notice is best effort).
func (n *Node) logHoldsRemoval(index uint64) bool {
	var entry raft.Log
	if err := n.disk.GetLog(index, &entry); err != nil {
		return true
	}
	if entry.Type != raft.LogConfiguration {
		return false
	}
	for _, s := range raft.DecodeConfiguration(entry.Data).Servers {
		if string(s.ID) == n.cfg.id {
			return false
		}
	}
	return true
}

// selfInConfiguration returns this node's entry in its latest raft
// configuration (nil if it is not in it) and the number of members there.
func (n *Node) selfInConfiguration(ctx context.Context) (self *raft.Server, members int, err error) {
	cf := n.raft.GetConfiguration()
	if err := n.waitFuture(ctx, cf); err != nil {
		return nil, 0, err
	}
	servers := cf.Configuration().Servers
	for _, s := range servers {
		if string(s.ID) == n.cfg.id {
			return &s, len(servers), nil
		}
	}
	return nil, len(servers), nil
}
