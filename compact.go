package kvstore

import (
	"context"
	"fmt"

	"github.com/kvstore/kvstore/internal/wire"
)

// CompactOption modifies a Compact.
type CompactOption func(*compactOptions)

type compactOptions struct{ physical bool }

// WithCompactPhysical makes Compact return only once this node has also
// freed the compacted history, like etcd's physical compaction.
func WithCompactPhysical() CompactOption { return func(o *compactOptions) { o.physical = true } }

// CompactResponse answers Compact.
type CompactResponse struct {
	// Header.Revision is the store's current revision (SEMANTICS.md rule 17).
	Header Header
}

// Compact discards the history before rev on every member: it goes through
// raft and returns once committed and applied on this node; if ctx ends
// first it may still commit. Afterwards reads below rev fail with
// ErrCompacted on every member, while rev itself and later revisions read as
// before (SEMANTICS.md rule 7). Memory is reclaimed in the background.
//
// Compacting at or below the last compact revision is ErrCompacted (a
// never-compacted store accepts Compact(0) and changes nothing); above the
// current revision it is ErrFutureRevision (rule 17). A failed Compact
// changes nothing.
func (n *Node) Compact(ctx context.Context, rev int64, opts ...CompactOption) (*CompactResponse, error) {
	var o compactOptions
	for _, opt := range opts {
		opt(&o)
	}
	res, err := n.propose(ctx, &wire.Command{Kind: wire.CmdCompact, Revision: rev})
	if err != nil {
		return nil, err
	}
	if o.physical {
		select {
		case <-n.fsm.compactionDone(rev):
		case <-ctx.Done():
			return nil, fmt.Errorf("kvstore: compaction at %d committed, still freeing history: %w", rev, ctx.Err())
		case <-n.closed:
			return nil, n.errClosed()
		}
	}
	return &CompactResponse{Header: n.header(res.Revision)}, nil
}
