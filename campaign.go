package kvstore

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// A member that is the only voter of its cluster needs no vote but its own
// to lead, yet hashicorp/raft starts every member as a follower that waits
// a randomized heartbeat timeout (one to two HeartbeatTimeouts, 1–2 s by
// default) for a leader to hear from before it campaigns. For a one-member
// cluster that wait was a fixed cost of every Open, fresh or restarted,
// however little data there was: no write and no linearizable read is
// served before a leader.
//
// campaignIfSoleVoter removes the wait. raft's follower loop re-arms its
// election timer to fire at once when ReloadConfig lowers HeartbeatTimeout;
// when it fires, a follower that has heard from no leader within
// HeartbeatTimeout campaigns, and a raft just started has heard from none.
// So the timeout is lowered and set back at once: the timer fires with the
// configured timeout in force, and the member campaigns and, as sole voter,
// wins.
//
// No guarantee depends on this: timeouts decide only when a member
// campaigns, never whether it may win. Votes are still persisted one per
// term and the winner's log still holds every committed entry, so raft's
// election safety is untouched; a linearizable read still needs the new
// leader's first commit in its term (readindex.go). When the sole-voter
// configuration is not yet committed (a cluster shrinking to one member),
// the early election is one raft would hold a heartbeat timeout later
// anyway, against the same configuration.
//
// It is called from Open before any goroutine of the node that reloads
// raft's configuration (runDiskWatch) starts, so the read-modify-write of
// the reloadable configuration cannot interleave with another.
func (n *Node) campaignIfSoleVoter() error {
	future := n.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return fmt.Errorf("kvstore: reading the raft configuration: %w", err)
	}
	if !soleVoter(future.Configuration(), raft.ServerID(n.cfg.id)) {
		return nil
	}
	configured := n.raft.ReloadableConfig()
	// raft refuses a heartbeat timeout below the leader lease; with none
	// lower to set, the member waits for its timer as before.
	if configured.HeartbeatTimeout <= n.cfg.leaderLeaseTimeout {
		return nil
	}
	lowered := configured
	lowered.HeartbeatTimeout = n.cfg.leaderLeaseTimeout
	if err := n.raft.ReloadConfig(lowered); err != nil {
		return fmt.Errorf("kvstore: lowering the heartbeat timeout to campaign: %w", err)
	}
	if err := n.raft.ReloadConfig(configured); err != nil {
		return fmt.Errorf("kvstore: restoring the heartbeat timeout: %w", err)
	}
	return nil
}

// soleVoter reports whether id is the only voter of c.
func soleVoter(c raft.Configuration, id raft.ServerID) bool {
	voters := 0
	self := false
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter {
			voters++
			self = self || s.ID == id
		}
	}
	return voters == 1 && self
}
