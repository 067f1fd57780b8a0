package kvstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
)

// Corruption checks, as etcd's: every member applies the same log, so
// every member's store must hash alike at the same revision (HashKV). A
// member whose store does not — a bit flip in memory, a bug in one build's
// apply — serves wrong data without any error, and only comparing hashes
// tells. Two checks compare them:
//
//   - the initial check, once per Open: as soon as the member has caught up
//     with the leader (one read-index round, as the caught_up readiness
//     check), it hashes its store at its current revision and asks every
//     other member for its hash at that revision (a wire.RPCHashKV call);
//   - the compact hash check, every WithCorruptCheckInterval on the leader:
//     after each compaction it asks every member for its hash at the
//     latest compact revision, which is the same state on every member
//     that has applied that compaction whatever it applied since. A tick
//     with no new compaction costs nothing but reading the compact
//     revision; a member hashes its store (O(size)) once per compaction,
//     the answer being kept until the next one.
//
// Only hashes taken with the same compact revision are compared (the hash
// covers it): a member that has not reached the revision, has compacted
// past it or is at another compact revision, or that cannot be reached, is
// left out of that round. The compact hash check asks again at the next
// tick until every member has been compared at that compaction.
//
// On a mismatch the members are grouped by hash. If one group holds a
// majority of the cluster's members, each member outside it gets a
// CORRUPT alarm in its own name, raised through raft. If none does while
// some members were not compared, the round concludes nothing (they may
// make a majority) and is tried again. If none does with every member
// compared (two members disagreeing, a three-way split), nobody can tell
// which data is right, and every member gets one: the whole cluster stops
// serving, the effect of etcd's alarm for member 0 in that case. Either
// way the members, hashes and revisions are logged at error level.
//
// A member with a CORRUPT alarm in its name refuses reads (Get and read-only
// Txn, linearizable and serializable), new watches, Backup and writes
// through it (Put, Delete, Txn, Compact, Grant, Revoke) with ErrCorrupt; as
// leader it refuses the writes other members forward to it (their results
// would be read from its state) and hands leadership to another member: at
// once when its own check raised the alarm, else at its next compact hash
// check tick or as soon as it refuses a write, whichever comes first. It
// still replicates and applies the log, and answers Alarms, DisarmAlarm,
// Status, HashKV and membership calls, so that an operator can look at it
// and repair it (remove it, wipe it, add it back; or restore it from a
// backup) and then disarm the alarm. The other members keep serving: etcd
// stops the whole cluster on any CORRUPT alarm, which a member that knows it
// is the odd one out need not.

// DefaultCorruptCheckInterval is how often the leader runs the compact
// hash check: etcd 3.6's --compact-hash-check-time, its check being on by
// default there too. A tick after no compaction costs nothing.
const DefaultCorruptCheckInterval = time.Minute

// corruptCallTimeout bounds one hash call to one member: long enough for a
// member to hash a large store, short enough that an unreachable member
// does not hold up the others' comparison past the next ticks.
const corruptCallTimeout = 10 * time.Second

// WithCorruptCheckInterval sets how often the leader compares the members'
// hashes at the latest compact revision (etcd's --compact-hash-check-time;
// default DefaultCorruptCheckInterval); 0 turns that check off. A negative
// interval is ErrInvalidOption.
func WithCorruptCheckInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalid("WithCorruptCheckInterval", "negative interval %v", d)
		}
		c.corruptCheck.interval = d
		return nil
	}
}

// WithInitialCorruptCheck turns the check a member makes once at start,
// when it has caught up, on (the default) or off (etcd's
// --initial-corrupt-check, off by default there because etcd does not serve
// until it ends; kvstore runs it in the background, so it delays nothing).
func WithInitialCorruptCheck(enabled bool) Option {
	return func(c *config) error {
		c.corruptCheck.skipInitial = !enabled
		return nil
	}
}

// corruptCheckConfig is the checks' configuration; the zero value runs the
// initial check and no compact hash check (defaultConfig sets the interval).
type corruptCheckConfig struct {
	interval    time.Duration
	skipInitial bool
}

// startCorruptionChecks starts the goroutines of the checks cfg asks for;
// Open calls it once raft runs.
func (n *Node) startCorruptionChecks() {
	if !n.cfg.corruptCheck.skipInitial {
		n.goAsync(n.runInitialCorruptCheck)
	}
	if n.cfg.corruptCheck.interval > 0 {
		n.goAsync(n.runCompactHashCheck)
	}
}

// hashCache keeps a member's latest hash at its compact revision, which
// the leader asks for at every tick until every member has answered. mu
// also serializes the hashing, so that concurrent askers do not hash a
// large store twice at once.
type hashCache struct {
	mu                sync.Mutex
	valid             bool
	revision, compact int64
	// restores is the FSM's count of snapshot restores when the hash was
	// taken: a store replaced by a snapshot at the same compact revision
	// must be hashed again (a corrupt snapshot would otherwise hide
	// behind the hash of the state it replaced).
	restores uint64
	hash     uint32
}

// forget drops the cached hash (the store was changed behind apply's back,
// by a test's StoreFault).
func (c *hashCache) forget() {
	c.mu.Lock()
	c.valid = false
	c.mu.Unlock()
}

// memberHash is one member's answer to "your hash at revision R".
type memberHash struct {
	member string
	hash   uint32
	// compact and current are the member's compact and current revisions
	// when it hashed.
	compact, current int64
}

// hashAt hashes this member's store at rev, with the compact revision the
// hash covers. It is ErrCompacted or ErrFutureRevision when rev is out of
// the store's range, errCompactionRace when compactions kept landing while
// it hashed.
func (n *Node) hashAt(rev int64) (memberHash, error) {
	c := &n.hashes
	c.mu.Lock()
	defer c.mu.Unlock()
	for range 3 {
		compact, restores := n.fsm.compactRevision(), n.fsm.restores.Load()
		if c.valid && c.revision == rev && c.compact == compact && c.restores == restores {
			return memberHash{member: n.cfg.id, hash: c.hash, compact: compact, current: n.fsm.revision()}, nil
		}
		current := n.fsm.revision()
		h, err := n.fsm.hash(rev)
		if err != nil {
			return memberHash{}, err
		}
		if n.fsm.compactRevision() != compact || n.fsm.restores.Load() != restores {
			continue // a compaction or a restore applied meanwhile: the hash may cover either
		}
		if rev == compact {
			c.valid, c.revision, c.compact, c.restores, c.hash = true, rev, compact, restores, h
		}
		return memberHash{member: n.cfg.id, hash: h, compact: compact, current: current}, nil
	}
	return memberHash{}, errCompactionRace
}

// errCompactionRace is hashAt's answer when the compact revision moved
// under every attempt; the asker leaves this member out of the round.
var errCompactionRace = errors.New("kvstore: compactions applied while hashing; ask again")

// serveHashKV answers a member's RPCHashKV.
func (n *Node) serveHashKV(rev int64, reply *wire.Reply) error {
	if rev <= 0 {
		return fmt.Errorf("%w: hash request for revision %d", ErrBadRPC, rev)
	}
	h, err := n.hashAt(rev)
	if err != nil {
		return err
	}
	reply.Hash, reply.CompactRevision, reply.Revision = h.hash, h.compact, h.current
	return nil
}

// peerHashes asks every other member of the configuration for its hash at
// rev, concurrently, each call bounded by corruptCallTimeout. It returns
// the answers and, for each member that gave none, why.
func (n *Node) peerHashes(ctx context.Context, rev int64) (answers []memberHash, failed map[string]error, members int, err error) {
	f := n.raft.GetConfiguration()
	if err := n.waitFuture(ctx, f); err != nil {
		return nil, nil, 0, err
	}
	servers := f.Configuration().Servers
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed = map[string]error{}
	for _, s := range servers {
		if string(s.ID) == n.cfg.id {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := n.askHash(ctx, s, rev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[string(s.ID)] = err
				return
			}
			answers = append(answers, h)
		}()
	}
	wg.Wait()
	slices.SortFunc(answers, func(a, b memberHash) int { return strings.Compare(a.member, b.member) })
	return answers, failed, len(servers), nil
}

// askHash asks member s for its hash at rev.
func (n *Node) askHash(ctx context.Context, s raft.Server, rev int64) (memberHash, error) {
	ctx, cancel := context.WithTimeout(ctx, corruptCallTimeout)
	defer cancel()
	data, err := wire.EncodeRPC(&wire.Request{Kind: wire.RPCHashKV, Cluster: n.cfg.clusterToken, Revision: rev})
	if err != nil {
		return memberHash{}, err
	}
	raw, err := n.cfg.transport.Call(ctx, s.ID, s.Address, data)
	if err != nil {
		return memberHash{}, err
	}
	var reply wire.Reply
	if err := wire.DecodeRPC(raw, &reply); err != nil {
		return memberHash{}, err
	}
	if err := fromWireError(reply.Err); err != nil {
		return memberHash{}, err
	}
	return memberHash{member: string(s.ID), hash: reply.Hash, compact: reply.CompactRevision, current: reply.Revision}, nil
}

// corruptVerdict groups hashes taken at one revision with one compact
// revision (this member's first) by value, out of a cluster of members.
// It returns the members to raise CORRUPT for: none when all agree; those
// outside the group of a majority of members when there is one
// (majority true); else every member compared.
func corruptVerdict(hashes []memberHash, members int) (corrupt []string, majority bool) {
	groups := map[uint32][]string{}
	for _, h := range hashes {
		groups[h.hash] = append(groups[h.hash], h.member)
	}
	if len(groups) <= 1 {
		return nil, false
	}
	for hash, group := range groups {
		if len(group) > members/2 {
			for _, h := range hashes {
				if h.hash != hash {
					corrupt = append(corrupt, h.member)
				}
			}
			return corrupt, true
		}
	}
	for _, h := range hashes {
		corrupt = append(corrupt, h.member)
	}
	return corrupt, false
}

// roundOutcome is what one round of a check found.
type roundOutcome int

const (
	// roundIncomplete: too few members compared to conclude anything
	// (nobody, or hashes that differ with no majority while some members
	// were not compared: those may make one).
	roundIncomplete roundOutcome = iota
	// roundAgreed: the members compared agree; some may not have been.
	roundAgreed
	// roundAllAgreed: every member was compared, and all agree.
	roundAllAgreed
	// roundRaised: a mismatch was judged and CORRUPT alarms raised.
	roundRaised
)

// compareHashes is one round of a check: own is this member's hash at rev,
// answers and failed the other members' (answers at another compact
// revision are moved into failed). It raises CORRUPT alarms on a mismatch
// it can judge.
func (n *Node) compareHashes(ctx context.Context, check string, rev int64, own memberHash, answers []memberHash, failed map[string]error, members int) roundOutcome {
	compared := []memberHash{own}
	for _, a := range answers {
		if a.compact != own.compact {
			failed[a.member] = fmt.Errorf("compact revision %d, not %d", a.compact, own.compact)
			continue
		}
		compared = append(compared, a)
	}
	for member, err := range failed {
		n.logger().Debug("corruption check: member not compared", "check", check, "member", member, "revision", rev, "error", err)
	}
	if len(compared) < 2 {
		return roundIncomplete // nobody to compare with: not a round
	}
	corrupt, majority := corruptVerdict(compared, members)
	n.metrics.corruptionChecked(check, corrupt != nil)
	switch {
	case corrupt == nil && len(failed) == 0:
		return roundAllAgreed
	case corrupt == nil:
		return roundAgreed
	case !majority && len(failed) > 0:
		n.logger().Warn("corruption check: members' hashes differ; waiting for the members not compared to tell which are in the minority",
			"check", check, "member", n.cfg.id, "revision", rev, "compact_revision", own.compact, "not_compared", len(failed))
		return roundIncomplete
	}
	var hashes []string
	for _, h := range compared {
		hashes = append(hashes, fmt.Sprintf("%s=%08x", h.member, h.hash))
	}
	msg := "corruption check: members' hashes differ; raising CORRUPT alarms for the members in the minority"
	if !majority {
		msg = "corruption check: members' hashes differ and no majority agrees; raising CORRUPT alarms for every member compared"
	}
	n.logger().Error(msg, "check", check, "member", n.cfg.id, "revision", rev, "compact_revision", own.compact,
		"hashes", strings.Join(hashes, ","), "corrupt", strings.Join(corrupt, ","))
	for _, member := range corrupt {
		if _, err := n.propose(ctx, alarmCommand(wire.AlarmActivate, member, AlarmCorrupt)); err != nil {
			n.logger().Error("corruption check: raising the CORRUPT alarm failed", "check", check, "member", n.cfg.id, "corrupt", member, "error", err)
		}
	}
	n.stepDownIfCorrupt(ctx)
	return roundRaised
}

// runInitialCorruptCheck waits until this member has caught up with the
// leader, then compares its hash at its revision with the other members'.
// A round that cannot conclude (no other member could be compared, all
// behind, say; or hashes differ and the members that would make a
// majority were not compared) is tried again, a few times, an election
// timeout later. A round in which the members compared agree ends the
// check, as etcd's, even if some could not be compared.
func (n *Node) runInitialCorruptCheck() {
	ctx := n.closedCtx
	for {
		err := n.readIndex(ctx)
		if err == nil {
			break
		}
		if !n.sleep(n.cfg.electionTimeout) {
			return
		}
	}
	n.caughtUp.Store(true) // what health.go's caught_up latches too
	for range 5 {
		rev := n.fsm.revision()
		own, err := n.hashAt(rev)
		if err == nil {
			var answers []memberHash
			var failed map[string]error
			var members int
			answers, failed, members, err = n.peerHashes(ctx, rev)
			if err == nil {
				if members <= 1 {
					return // alone: nobody to compare with
				}
				if n.compareHashes(ctx, "initial", rev, own, answers, failed, members) != roundIncomplete {
					return
				}
			}
		}
		if ctx.Err() != nil || !n.sleep(n.cfg.electionTimeout) {
			return
		}
	}
	n.logger().Warn("corruption check: no other member could be compared at start", "member", n.cfg.id)
}

// runCompactHashCheck runs the compact hash check at every tick while this
// member leads, until the node closes.
func (n *Node) runCompactHashCheck() {
	ticker := time.NewTicker(n.cfg.corruptCheck.interval)
	defer ticker.Stop()
	var checked int64 // the compact revision every member was compared at
	for {
		select {
		case <-ticker.C:
		case <-n.closed:
			return
		}
		if info, _ := n.lead.get(); !info.IsLeader {
			continue
		}
		ctx, cancel := context.WithTimeout(n.closedCtx, n.cfg.corruptCheck.interval+corruptCallTimeout)
		n.stepDownIfCorrupt(ctx)
		if rev := n.fsm.compactRevision(); rev > 0 && rev != checked && n.compactHashCheck(ctx, rev) {
			checked = rev
		}
		cancel()
	}
}

// compactHashCheck compares the members' hashes at compact revision rev
// and reports whether every member was compared (or a mismatch found).
func (n *Node) compactHashCheck(ctx context.Context, rev int64) bool {
	own, err := n.hashAt(rev)
	if err != nil || own.compact != rev {
		return false // compacted again meanwhile: the next tick checks that
	}
	answers, failed, members, err := n.peerHashes(ctx, rev)
	if err != nil {
		return false
	}
	outcome := n.compareHashes(ctx, "compact", rev, own, answers, failed, members)
	return outcome == roundAllAgreed || outcome == roundRaised
}

// stepDownIfCorrupt hands leadership to another member when this one
// leads under a CORRUPT alarm of its own: a leader answers forwarded
// writes from its state, which it refuses to.
func (n *Node) stepDownIfCorrupt(ctx context.Context) {
	if n.raft.State() != raft.Leader || !n.corruptHere() {
		return
	}
	if err := n.transferLeadership(ctx, nil); err != nil {
		n.logger().Warn("corruption check: a leader under a CORRUPT alarm could not hand leadership over", "member", n.cfg.id, "error", err)
	}
}

// sleep waits d, or until the node closes; it reports whether the node is
// still open.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.closed:
		return false
	}
}

// corruptHere reports whether a CORRUPT alarm is in force in this member's
// name, in its applied state.
func (n *Node) corruptHere() bool { return n.fsm.alarmedFor(n.cfg.id, AlarmCorrupt) }

// refuseIfCorrupt is the check a read, watch or write through this member
// makes first: ErrCorrupt under a CORRUPT alarm of its own.
func (n *Node) refuseIfCorrupt() error {
	if n.corruptHere() {
		return fmt.Errorf("%w: member %s has a CORRUPT alarm (its data disagrees with the other members'); it serves no reads or writes until an operator repairs it and disarms the alarm", ErrCorrupt, n.cfg.id)
	}
	return nil
}

// checkNotCorrupt is the "data_corruption" readiness check (health.go):
// it fails while a CORRUPT alarm is in force in this member's name.
func (n *Node) checkNotCorrupt(context.Context) error {
	if n.corruptHere() {
		return fmt.Errorf("alarm %s raised for %s", AlarmCorrupt, n.cfg.id)
	}
	return nil
}

// refuseCommandIfCorrupt is refuseIfCorrupt for a command about to be
// proposed through this member: alarm commands pass, so that the alarm can
// be disarmed through any member. A leader that refuses one hands
// leadership over, in the background: the alarm may have come from
// another member's check, and with no compact hash check ticking here
// nothing else would.
func (n *Node) refuseCommandIfCorrupt(c *wire.Command) error {
	if c.Kind == wire.CmdAlarm {
		return nil
	}
	err := n.refuseIfCorrupt()
	if err != nil && n.raft.State() == raft.Leader && n.handingOver.CompareAndSwap(false, true) {
		if !n.goAsync(n.handOverCorruptLeadership) {
			n.handingOver.Store(false)
		}
	}
	return err
}

// handOverCorruptLeadership is the goroutine refuseCommandIfCorrupt
// starts: one hand-over attempt, bounded by corruptCallTimeout and by the
// node's Close.
func (n *Node) handOverCorruptLeadership() {
	defer n.handingOver.Store(false)
	ctx, cancel := context.WithTimeout(n.closedCtx, corruptCallTimeout)
	defer cancel()
	n.stepDownIfCorrupt(ctx)
}

// refuseForwardedIfCorrupt is refuseCommandIfCorrupt for an encoded
// command another member forwarded to this one as leader; it decodes the
// command only while this member is corrupt.
func (n *Node) refuseForwardedIfCorrupt(data []byte) error {
	if !n.corruptHere() {
		return nil
	}
	c, err := wire.DecodeCommand(data)
	if err != nil {
		return err
	}
	return n.refuseCommandIfCorrupt(c)
}
