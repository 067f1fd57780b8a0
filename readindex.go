package kvstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/transport"
)

// Linearizable reads use raft's read-index scheme (raft thesis §6.4). The
// leader notes its commit index, confirms that it still leads (a majority
// of voters answer a call made after the readers joined with its term,
// readconfirm.go), and hands out the index; a read that waits until its node
// has applied that index sees every write acknowledged before the read
// began. A follower asks the leader for the index and then reads locally.
//
// Reads are batched: concurrent readers join the next round, and one round
// (one leadership confirmation, or one call to the leader) serves them all.
// A round starts only after its readers joined, which is what makes its
// index good for them. In a cluster of two or three voters the leader
// answers a follower's call without a heartbeat round: the call is itself
// the follower's acknowledgement, and with the leader's own it makes a
// majority (readquorum.go).

// readRound is one leadership confirmation shared by the readers that
// joined it. index and err are set before done is closed.
type readRound struct {
	done    chan struct{}
	index   uint64
	err     error
	readers int // how many joined; under readBatcher.mu until taken

	// Readers whose contexts share one Done channel wait on a ctxGroup
	// instead of each selecting on done and on that channel: the select
	// locks and queues on both, and 64 readers of one context contended on
	// its channel's lock (get-lin's CPU profile: selectgo 15%, lock2 6%).
	// The first reader of a context selects; the next ones of the same
	// context join a group, which one context.AfterFunc wakes if the
	// context ends first. Readers with contexts of their own (a gRPC
	// server's requests) select as before. Under readBatcher.mu until
	// taken.
	lastDone  <-chan struct{} // the Done channel of the latest reader
	lastGroup *ctxGroup       // its group, nil until a second reader of it
	groups    []*ctxGroup
}

// ctxGroup is the readers of one round that share a context. ch is closed
// when the round is answered or when the context ends, whichever is first.
type ctxGroup struct {
	ch      chan struct{}
	release sync.Once
	stop    func() bool // unregisters the context.AfterFunc
}

func (g *ctxGroup) wake() { g.release.Do(func() { close(g.ch) }) }

// answer publishes the round's index and err (set by the caller) to its
// readers.
func (r *readRound) answer() {
	close(r.done)
	for _, g := range r.groups {
		g.stop()
		g.wake()
	}
}

// readBatcher collects readers into rounds for the read-index goroutine.
// Every round it hands out is answered (done closed): by the goroutine, or
// at once with the node's closed error once the goroutine has stopped. So
// a reader waits on its round alone, not also on the node's closed
// channel, which every reader would otherwise lock and queue on.
type readBatcher struct {
	mu      sync.Mutex
	pending *readRound    // the round new readers join; nil when none asked
	kick    chan struct{} // holds a token while pending is non-nil
	stopped error         // set when the read-index goroutine stopped
}

func (b *readBatcher) init() { b.kick = make(chan struct{}, 1) }

// join returns the round the caller's read will be served by.
func (b *readBatcher) join() *readRound {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.joinLocked()
}

// joinWaiting is join for a reader whose context has a Done channel,
// done: it also returns the group to wait on, nil when the reader is to
// select on the round's done and on done itself.
func (b *readBatcher) joinWaiting(ctx context.Context, done <-chan struct{}) (*readRound, *ctxGroup) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.joinLocked()
	if r.lastDone != done {
		r.lastDone, r.lastGroup = done, nil
		return r, nil
	}
	if r.lastGroup == nil {
		g := &ctxGroup{ch: make(chan struct{})}
		// AfterFunc runs g.wake in a goroutine of its own, never here,
		// so holding b.mu while registering cannot deadlock.
		g.stop = context.AfterFunc(ctx, g.wake)
		r.lastGroup = g
		r.groups = append(r.groups, g)
	}
	return r, r.lastGroup
}

func (b *readBatcher) joinLocked() *readRound {
	if b.stopped != nil {
		r := &readRound{done: make(chan struct{}), err: b.stopped}
		close(r.done)
		return r
	}
	if b.pending == nil {
		b.pending = &readRound{done: make(chan struct{})}
		select {
		case b.kick <- struct{}{}:
		default: // a token is already there (left when the node closed)
		}
	}
	b.pending.readers++
	return b.pending
}

// wait joins the next round and returns it once answered; ctx's error
// if ctx ends first.
func (b *readBatcher) wait(ctx context.Context) (*readRound, error) {
	done := ctx.Done()
	if done == nil {
		r := b.join()
		<-r.done // a plain receive: no select locking other channels
		return r, nil
	}
	r, g := b.joinWaiting(ctx, done)
	if g == nil {
		select {
		case <-r.done:
			return r, nil
		case <-done:
			return nil, ctx.Err()
		}
	}
	<-g.ch // also a plain receive, on a channel of this round's
	select {
	case <-r.done:
		return r, nil
	default:
		return nil, ctx.Err() // the context ended first
	}
}

// take hands the pending round to the read-index goroutine.
func (b *readBatcher) take() *readRound {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.pending
	b.pending = nil
	return r
}

// stop answers the pending round, and every round joined later, with err.
func (b *readBatcher) stop(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = err
	if r := b.pending; r != nil {
		b.pending = nil
		r.err = err
		r.answer()
	}
}

// runReadIndex serves read rounds one at a time until the node closes. A
// round it has taken always ends: its leadership confirmation and its call
// to the leader are bound to the node's Close.
func (n *Node) runReadIndex() {
	lone := 0 // rounds in a row that served one reader
	for {
		select {
		case <-n.reads.kick:
		case <-n.closed:
			n.reads.stop(n.errClosed())
			return
		}
		// Let the readers that are about to join do so: on few cores the
		// round would otherwise start with one reader each time. Not after
		// two rounds in a row of one reader: a lone sequential reader has
		// nobody to wait for, and the yield, which queues this goroutine
		// behind every runnable one, only delayed it (a follower's
		// sequential linearizable get 12% faster without; BENCHMARKS.md).
		// Under load a round of one is rare and the next is larger; two in
		// a row, not one, keep 64 readers' rounds as large as before.
		if lone < 2 {
			runtime.Gosched()
		}
		r := n.reads.take()
		if r.readers == 1 {
			lone++
		} else {
			lone = 0
		}
		r.index, r.err = n.fetchReadIndex()
		r.answer()
	}
}

// fetchReadIndex confirms leadership locally or asks the leader.
func (n *Node) fetchReadIndex() (uint64, error) {
	if n.raft.State() == raft.Leader {
		info, _ := n.lead.get()
		if !info.IsLeader {
			// Elected, but entries of earlier terms may still be committing.
			return 0, errLeaderNotReady
		}
		// The commit index is that of the leader of info.Term, ready: the
		// term is the same before and after it is read, with this member
		// leading.
		term := info.Term
		if n.raft.CurrentTerm() != term {
			return 0, errLeaderNotReady // a later term began; its view is not published yet
		}
		commit := n.raft.CommitIndex()
		if n.raft.CurrentTerm() != term || n.raft.State() != raft.Leader {
			return 0, n.notLeader()
		}
		if err := n.confirmLeadership(term); err != nil {
			return 0, err
		}
		return n.lastFSMIndex(commit), nil
	}
	_, addr := n.Leader()
	if addr == "" {
		return 0, ErrNoLeader
	}
	// A round serves many readers with their own deadlines; it is bounded
	// by an election timeout, after which its readers try a new round.
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.electionTimeout)
	defer cancel()
	stop := context.AfterFunc(n.closedCtx, cancel)
	defer stop()
	// The term is read after the round's readers joined (the round was
	// taken before this call): the leader may count this request as this
	// member's acknowledgement of its leadership at that time.
	req := &wire.Request{Kind: wire.RPCReadIndex, From: n.cfg.id, Term: n.raft.CurrentTerm()}
	reply, err := n.call(ctx, addr, req)
	if err == nil {
		// The leader's own refusal (no longer leader, not ready) comes in
		// the reply: its empty index is no answer.
		err = fromWireError(reply.Err)
		if errors.Is(err, ErrClosed) {
			// The leader is closing, not this node: a later round finds
			// the next leader. Its ErrClosed must not reach this node's
			// callers as if this node had closed.
			err = fmt.Errorf("%w: the leader is closing (%s)", ErrLeaderUnreachable, err)
		}
	}
	if err != nil {
		return 0, err
	}
	return reply.Index, nil
}

// errLeaderNotReady is a round's answer on a leader still committing its
// first entry; its readers retry when the leadership changes.
var errLeaderNotReady = errors.New("kvstore: leader not ready")

// readIndex makes the next local read linearizable: it returns once this
// node has applied every write acknowledged (by any member) before the call.
func (n *Node) readIndex(ctx context.Context) error {
	for {
		_, changed := n.lead.get()
		r, err := n.reads.wait(ctx)
		if err != nil {
			return err
		}
		if r.err == nil {
			return n.waitApplied(ctx, r.index)
		}
		if n.closedCtx.Err() != nil {
			return n.errClosed() // whatever the round made of the Close
		}
		if !retryableRead(r.err) {
			return r.err
		}
		// No usable leader right now: try again once the leadership
		// changes, or after a heartbeat, whichever comes first.
		select {
		case <-changed:
		case <-time.After(n.cfg.heartbeatTimeout / 2):
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", r.err, ctx.Err())
		case <-n.closed:
			return n.errClosed()
		}
	}
}

// retryableRead reports whether a read round failed for want of a
// reachable leader, which a later round may find.
func retryableRead(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrLeaderUnreachable) || errors.Is(err, errLeaderNotReady) ||
		errors.Is(err, transport.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded)
}

// lastFSMIndex returns the index of the last entry at or below commit that
// raft hands to the state machine. raft never passes no-op entries (one
// starts every term) or barriers to the FSM, so waiting for the commit index
// itself could wait forever. When the walk reaches an entry no longer in
// the log, every entry it passed was a no-op or a barrier and the last
// command is inside a snapshot this node's state machine holds: its applied
// index covers it (and is an index every member's state machine reaches).
// Answering 0 there, as this did, let a lagging follower read its stale
// state (a new leader's no-op and barrier after a snapshot that truncated
// the last command). The answer for the latest commit index is cached, as
// consecutive rounds usually ask for the same one.
func (n *Node) lastFSMIndex(commit uint64) uint64 {
	n.fsmIndexCache.Lock()
	defer n.fsmIndexCache.Unlock()
	if n.fsmIndexCache.commit == commit {
		return n.fsmIndexCache.index
	}
	index := uint64(0)
	for i := commit; i > 0; i-- {
		var l raft.Log
		if err := n.storage.Logs.GetLog(i, &l); err != nil {
			index = n.fsm.appliedIndex()
			break
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			index = i
			break
		}
	}
	n.fsmIndexCache.commit, n.fsmIndexCache.index = commit, index
	return index
}
