package concurrency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/mvcc"
)

// Election elects one leader among the sessions campaigning under a
// prefix, with etcd's semantics and key layout: a candidate puts prefix +
// "/" + its lease ID in hex, holding its value; the key with the lowest
// create revision is the leader; the others wait, each on the key created
// just before its own. Candidates may campaign through different members of
// a cluster, in this process or in others.
//
// The leader's fencing token is its key's create revision (Rev), and Txn
// makes a write conditional on still being the leader, as Mutex does: an
// elected leader can act after its session was lost (see Mutex for what
// that means), but its fenced writes are then refused.
//
// An Election stands for one candidate: Campaign, Proclaim and Resign must
// not be called concurrently on it. Leader, Observe, Key, Rev, IsLeader and
// Txn may be called from any goroutine.
type Election struct {
	s      *Session
	prefix string // with the trailing "/"
	key    []byte // this session's candidate key

	mu  sync.Mutex // guards rev
	rev int64      // the key's create revision while leader, else 0
}

// NewElection returns an Election under prefix + "/", campaigning through s.
func NewElection(s *Session, prefix string) (*Election, error) {
	if s == nil {
		return nil, ErrNilNode
	}
	if prefix == "" {
		return nil, ErrEmptyPrefix
	}
	p := prefix + "/"
	return &Election{s: s, prefix: p, key: leaseKey(p, s.id)}, nil
}

// Campaign puts this candidate in the election with value val and blocks
// until it is the leader, ctx ends, or the session is lost. A candidate
// whose key exists already (an earlier Campaign of the session) keeps its
// place and has its value set to val. If Campaign fails, the candidate's
// key is deleted again (it resigns).
func (e *Election) Campaign(ctx context.Context, val []byte) error {
	if err := e.s.alive(); err != nil {
		return err
	}
	rev, _, existing, err := claim(ctx, e.s, e.prefix, e.key, val)
	if err != nil {
		return err
	}
	if existing != nil && !bytes.Equal(existing.Value, val) {
		if err := e.proclaim(ctx, rev, val); err != nil {
			e.abandon(ctx, rev)
			return err
		}
	}
	if err := waitPredecessors(ctx, e.s, e.prefix, rev); err != nil {
		e.abandon(ctx, rev)
		return err
	}
	resp, err := retry(ctx, e.s.node, func() (*kvstore.GetResponse, error) {
		return e.s.node.Get(ctx, e.key, kvstore.WithKeysOnly())
	})
	if err != nil {
		e.abandon(ctx, rev)
		return err
	}
	if len(resp.KVs) == 0 || resp.KVs[0].CreateRevision != rev {
		if err := e.s.alive(); err != nil {
			return err
		}
		return fmt.Errorf("%w: the candidate's key %s was deleted", ErrSessionExpired, e.key)
	}
	e.set(rev)
	return nil
}

func (e *Election) abandon(ctx context.Context, rev int64) {
	cctx, cancel := cleanupContext(ctx, e.s)
	defer cancel()
	_, _ = deleteOwn(cctx, e.s.node, e.key, rev) // if this fails, the key goes with the session
}

// Proclaim sets the leader's value without a new election. It returns
// ErrNotLeader, changing nothing, if this candidate is not the leader,
// or no longer is (its key is gone).
func (e *Election) Proclaim(ctx context.Context, val []byte) error {
	rev := e.Rev()
	if rev == 0 {
		return ErrNotLeader
	}
	if err := e.proclaim(ctx, rev, val); err != nil {
		if errors.Is(err, ErrNotLeader) {
			e.set(0)
		}
		return err
	}
	return nil
}

// proclaim puts val in the candidate key created at rev, if it still is.
func (e *Election) proclaim(ctx context.Context, rev int64, val []byte) error {
	resp, err := retry(ctx, e.s.node, func() (*kvstore.TxnResponse, error) {
		return e.s.node.Txn(ctx).
			If(kvstore.Compare(kvstore.CreateRevision(e.key), "=", rev)).
			Then(kvstore.OpPut(e.key, val, kvstore.WithLease(e.s.id))).
			Commit()
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s is gone", ErrNotLeader, e.key)
	}
	return nil
}

// Resign ends this candidate's leadership by deleting its key (never a
// later one), so the next candidate is elected. Resigning when not the
// leader does nothing and returns nil.
func (e *Election) Resign(ctx context.Context) error {
	rev := e.Rev()
	if rev == 0 {
		return nil
	}
	if _, err := deleteOwn(ctx, e.s.node, e.key, rev); err != nil {
		return err
	}
	e.set(0)
	return nil
}

func (e *Election) set(rev int64) {
	e.mu.Lock()
	e.rev = rev
	e.mu.Unlock()
}

// Rev returns the leader's fencing token while this candidate leads: the
// create revision of its key, greater than every earlier leader's. It is 0
// when this candidate has not been elected (or resigned).
func (e *Election) Rev() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rev
}

// Key returns this candidate's key: prefix + "/" + the lease ID in hex.
func (e *Election) Key() string { return string(e.key) }

// IsLeader returns the compare that holds only while this candidate is
// still the leader elected by the last successful Campaign.
func (e *Election) IsLeader() kvstore.Cmp {
	return kvstore.Compare(kvstore.CreateRevision(e.key), "=", e.Rev())
}

// Txn starts a txn fenced by this candidate's leadership: it commits only
// while this candidate is still the leader, and otherwise changes nothing
// and returns ErrNotLeader.
func (e *Election) Txn(ctx context.Context) *FencedTxn {
	return &FencedTxn{ctx: ctx, node: e.s.node, key: e.key, rev: e.Rev(), lost: ErrNotLeader, notHeld: ErrNotLeader}
}

// Leader returns the current leader's key and value, read linearizably:
// ErrNoLeader if no candidate is in the election.
func (e *Election) Leader(ctx context.Context) (*kvstore.KeyValue, error) {
	return leader(ctx, e.s.node, e.prefix)
}

func leader(ctx context.Context, node *kvstore.Node, prefix string) (*kvstore.KeyValue, error) {
	resp, err := retry(ctx, node, func() (*kvstore.GetResponse, error) {
		return node.Get(ctx, []byte(prefix), kvstore.WithPrefix(),
			kvstore.WithSort(mvcc.SortByCreateRevision, mvcc.SortAscend), kvstore.WithLimit(1))
	})
	if err != nil {
		return nil, err
	}
	if len(resp.KVs) == 0 {
		return nil, ErrNoLeader
	}
	return &resp.KVs[0], nil
}

// Observe returns a channel of the election's leaders: the current one
// first (once there is one), then each change, a new leader or a new
// value proclaimed, in order, each once. It watches only the leader's key
// (and the prefix while there is no leader). A receiver that falls behind
// delays only its own channel. The channel is closed when ctx ends or the
// node closes. Observe needs no campaign: any session's Election may
// observe.
func (e *Election) Observe(ctx context.Context) <-chan kvstore.KeyValue {
	out := make(chan kvstore.KeyValue)
	go observe(ctx, e.s.node, e.prefix, out)
	return out
}

// observe feeds out until ctx ends or node closes.
func observe(ctx context.Context, node *kvstore.Node, prefix string, out chan<- kvstore.KeyValue) {
	defer close(out)
	var last *kvstore.KeyValue
	send := func(kv kvstore.KeyValue) bool {
		if last != nil && bytes.Equal(last.Key, kv.Key) && last.ModRevision == kv.ModRevision {
			return true
		}
		select {
		case out <- kv:
			last = &kv
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		resp, err := retry(ctx, node, func() (*kvstore.GetResponse, error) {
			return node.Get(ctx, []byte(prefix), kvstore.WithPrefix(),
				kvstore.WithSort(mvcc.SortByCreateRevision, mvcc.SortAscend), kvstore.WithLimit(1))
		})
		if err != nil {
			return // ctx ended or the node closed: nothing else fails a read
		}
		if len(resp.KVs) == 0 {
			// No leader: wait for any candidate's put, then look again.
			if !waitEvent(ctx, node, []byte(prefix), resp.Header.Revision, true, func(mvcc.Event) bool { return true }) {
				return
			}
			continue
		}
		kv := resp.KVs[0]
		if !send(kv) {
			return
		}
		// Follow the leader's key until it is deleted.
		ok := waitEvent(ctx, node, kv.Key, resp.Header.Revision, false, func(ev mvcc.Event) bool {
			if ev.Type == kvstore.EventDelete {
				return true
			}
			return !send(ev.KV)
		})
		if !ok {
			return
		}
	}
}

// waitEvent watches key (a prefix if prefix) from rev+1 until done returns
// true for an event, and then returns true; or until the watch is
// compacted (also true: the caller looks again). It returns false when ctx
// ends or the node closes.
func waitEvent(ctx context.Context, node *kvstore.Node, key []byte, rev int64, prefix bool, done func(mvcc.Event) bool) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := []kvstore.OpOption{kvstore.WithRev(rev + 1)}
	if prefix {
		opts = append(opts, kvstore.WithPrefix(), kvstore.WithFilterDelete())
	}
	changes, err := node.Watch(wctx, key, opts...)
	if err != nil {
		return false
	}
	for resp := range changes {
		if resp.Canceled {
			return errors.Is(resp.Err, kvstore.ErrCompacted)
		}
		for _, ev := range resp.Events {
			if done(ev) {
				return ctx.Err() == nil
			}
		}
	}
	return false
}
