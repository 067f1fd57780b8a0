package kvstore

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// A learner is promoted only once it has caught up, as etcd promotes one
// (its leader compares the learner's match index with its own). A voter
// whose log is far behind counts in every quorum from its promotion on
// but cannot yet vote for a leader that has the log, nor store entries
// in time to help commit them: in a cluster of three, promoting an empty
// learner makes four voters that need three, one of them useless until
// it has caught up, and losing one more member then stops the cluster.
//
// The leader knows each follower's match from the commit relay, which
// learns it from the follower's successful answers to this term's
// AppendEntries requests (commitrelay.go): the index up to which the
// follower's log equals the leader's. A learner is ready when its match
// reaches nine tenths of the leader's last index, etcd's threshold. kvstore
// also refuses a learner it has not heard from in its term (a leader just
// elected learns each follower's match from its first answers, within a
// heartbeat) or whose latest request failed (etcd keeps an unreachable
// learner's old match and would promote it): a voter that cannot be
// reached is a vote lost from the moment it is added.

// learnerReadyNumerator / learnerReadyDenominator is the share of the
// leader's log a learner must hold: etcd's readyPercentThreshold, 0.9.
const (
	learnerReadyNumerator   = 9
	learnerReadyDenominator = 10
)

// learnerReady returns nil if this node, the leader, may promote the
// learner id: the learner answered in the current term and its match is
// at least nine tenths of the leader's last index. Otherwise it returns
// an error wrapping ErrLearnerNotReady that says how far the learner is.
func (n *Node) learnerReady(id raft.ServerID) error {
	term := n.raft.CurrentTerm()
	last := n.raft.LastIndex()
	match, answered := n.relay.matchOf(id, term)
	return checkLearnerReady(id, term, last, match, answered)
}

// checkLearnerReady is learnerReady's rule: the learner id answered in
// term and its match reaches nine tenths of the leader's last index.
func checkLearnerReady(id raft.ServerID, term, last, match uint64, answered bool) error {
	if !answered {
		return fmt.Errorf("%w: %q has not answered the leader in term %d", ErrLearnerNotReady, id, term)
	}
	if match*learnerReadyDenominator < last*learnerReadyNumerator {
		return fmt.Errorf("%w: %q holds the leader's log up to index %d of %d", ErrLearnerNotReady, id, match, last)
	}
	return nil
}
