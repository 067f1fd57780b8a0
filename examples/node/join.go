package main

import (
	"context"

	"github.com/kvstore/kvstore"
)

// join asks the members at cfg.join (peer addresses) to admit node, which
// was opened without bootstrap and waits to be added: as a learner with
// cfg.learner, else as a voter (added as a learner first and promoted once
// it has caught up, so that a new member never weakens the quorum while it
// copies the log). It returns once this member is in the configuration, or
// ctx's error; a member that refuses (another cluster token, an ID or
// address already taken) is an error that names it.
//
// This is the one place kvstore's Join is wired in; until it exists it
// returns errJoinUnavailable and the program exits with status 1.
func join(ctx context.Context, node *kvstore.Node, cfg config) error {
	_, _, _ = ctx, node, cfg
	return errJoinUnavailable
}
