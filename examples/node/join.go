package main

import (
	"context"

	"github.com/kvstore/kvstore"
)

// join asks the members at cfg.join (peer addresses) to admit node, which
// was opened without bootstrap: as a learner with cfg.learner, else as a
// voter (kvstore adds it as a learner first and promotes it once it has
// caught up, so a new member never weakens the quorum while it copies the
// log). On a restarted member it finishes what an earlier join left undone
// and otherwise does nothing. A member that refuses (another cluster
// token, an ID or address already taken) is an error that names it.
func join(ctx context.Context, node *kvstore.Node, cfg config) error {
	var opts []kvstore.JoinOption
	if cfg.learner {
		opts = append(opts, kvstore.JoinAsLearner())
	}
	return node.Join(ctx, cfg.join, opts...)
}
