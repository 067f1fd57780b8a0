package concurrency

import (
	"context"
	"fmt"
	"sync"

	"github.com/kvstore/kvstore"
)

// Mutex is a distributed lock over keys under a prefix, with etcd's
// algorithm and key layout: each would-be holder puts the key prefix +
// "/" + its session's lease ID in hex, attached to the lease; the key with
// the lowest create revision holds the lock; every other waiter watches
// only the key created just before its own and wakes when that key is
// deleted (no thundering herd). Waiters are served in the order their keys
// were created.
//
// # What a lock promises, and what it cannot
//
// While this holder's key exists, no other holder's key is the oldest:
// the store grants the lock to one session at a time. But a holder cannot
// know, at the instant it acts, that its key still exists: its session may
// have expired while it paused (a GC pause, a stopped VM, a partition), and
// another holder may already be in the critical section. No lock built on
// leases can prevent that; Jepsen's etcd 3.4.3 analysis shows it
// happening. What this Mutex adds is a fencing token: every acquisition
// gets the create revision of its key (Token), strictly greater than any
// earlier acquisition's, and Txn makes a write conditional on the key
// still being that acquisition's, checked by the store in the same
// revision as the write. Writes made that way are safe even from a paused
// holder: they are refused once the lock has passed on. Effects outside
// the store must check the token themselves (pass it along; reject lower
// ones).
//
// A Mutex stands for one holder: Lock, TryLock and Unlock must not be
// called concurrently on it. Token, Key, IsOwner and Txn may be called from
// any goroutine. Mutexes of one session on one prefix share a key and are
// the same holder; use a session per holder.
type Mutex struct {
	s      *Session
	prefix string // with the trailing "/"
	key    []byte // this session's key

	mu  sync.Mutex // guards rev
	rev int64      // the key's create revision while held, else 0
}

// NewMutex returns a Mutex over keys under prefix + "/", held through s.
func NewMutex(s *Session, prefix string) (*Mutex, error) {
	if s == nil {
		return nil, ErrNilNode
	}
	if prefix == "" {
		return nil, ErrEmptyPrefix
	}
	p := prefix + "/"
	return &Mutex{s: s, prefix: p, key: leaseKey(p, s.id)}, nil
}

func leaseKey(prefix string, lease int64) []byte {
	return fmt.Appendf(nil, "%s%x", prefix, lease)
}

// Lock blocks until this holder has the lock, ctx ends, or the session is
// lost. On success Token is the acquisition's fencing token. If it fails,
// its key is deleted again, so it does not hold up the waiters behind it.
// Locking a Mutex that is held already returns at once.
func (m *Mutex) Lock(ctx context.Context) error {
	if err := m.s.alive(); err != nil {
		return err
	}
	rev, holder, err := m.enqueue(ctx)
	if err != nil {
		return err
	}
	if holder == nil || holder.CreateRevision == rev {
		m.set(rev)
		return nil
	}
	if err := waitPredecessors(ctx, m.s, m.prefix, rev); err != nil {
		m.abandon(ctx, rev)
		return err
	}
	// Every older key is gone; ours must still be there, or the session
	// was lost while waiting.
	resp, err := retry(ctx, m.s.node, func() (*kvstore.GetResponse, error) {
		return m.s.node.Get(ctx, m.key, kvstore.WithKeysOnly())
	})
	if err != nil {
		m.abandon(ctx, rev)
		return err
	}
	if len(resp.KVs) == 0 || resp.KVs[0].CreateRevision != rev {
		if err := m.s.alive(); err != nil {
			return err
		}
		return fmt.Errorf("%w: the waiter's key %s was deleted", ErrSessionExpired, m.key)
	}
	m.set(rev)
	return nil
}

// TryLock takes the lock if it is free, and otherwise returns ErrLocked at
// once, leaving no key behind.
func (m *Mutex) TryLock(ctx context.Context) error {
	if err := m.s.alive(); err != nil {
		return err
	}
	rev, holder, err := m.enqueue(ctx)
	if err != nil {
		return err
	}
	if holder == nil || holder.CreateRevision == rev {
		m.set(rev)
		return nil
	}
	m.abandon(ctx, rev)
	return ErrLocked
}

// enqueue puts the waiter's key and returns its create revision and the
// current holder's key.
func (m *Mutex) enqueue(ctx context.Context) (int64, *kvstore.KeyValue, error) {
	if rev := m.Token(); rev != 0 {
		return rev, &kvstore.KeyValue{CreateRevision: rev}, nil
	}
	rev, holder, _, err := claim(ctx, m.s, m.prefix, m.key, nil)
	return rev, holder, err
}

// abandon deletes the waiter's key after a failed Lock, even if ctx has
// ended.
func (m *Mutex) abandon(ctx context.Context, rev int64) {
	cctx, cancel := cleanupContext(ctx, m.s)
	defer cancel()
	_, _ = deleteOwn(cctx, m.s.node, m.key, rev) // if this fails, the key goes with the session
}

// Unlock releases the lock by deleting this acquisition's key (never a
// later one). It returns ErrNotLocked if the Mutex is not held, and
// ErrLockLost if the key was already gone: the session expired while the
// lock was held, and the critical section may not have been exclusive.
// Either way the Mutex is no longer held afterwards, unless Unlock failed
// with another error (ctx, the node): then it may be called again.
func (m *Mutex) Unlock(ctx context.Context) error {
	rev := m.Token()
	if rev == 0 {
		return ErrNotLocked
	}
	deleted, err := deleteOwn(ctx, m.s.node, m.key, rev)
	if err != nil {
		return err
	}
	m.set(0)
	if !deleted {
		return fmt.Errorf("%w: %s was gone before Unlock", ErrLockLost, m.key)
	}
	return nil
}

func (m *Mutex) set(rev int64) {
	m.mu.Lock()
	m.rev = rev
	m.mu.Unlock()
}

// Token returns the fencing token of the current acquisition: the create
// revision of this holder's key, greater than that of every earlier
// acquisition of the same lock. It is 0 while the Mutex is not held.
// Holding a token says the lock was acquired, not that it is still held:
// see IsOwner and Txn.
func (m *Mutex) Token() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev
}

// Key returns this holder's key: prefix + "/" + the lease ID in hex.
func (m *Mutex) Key() string { return string(m.key) }

// IsOwner returns the compare that holds only while this acquisition
// still holds the lock, for a caller's own txns: CreateRevision(Key) equal
// to Token. Before Lock (Token 0) it holds only while no key exists.
func (m *Mutex) IsOwner() kvstore.Cmp {
	return kvstore.Compare(kvstore.CreateRevision(m.key), "=", m.Token())
}

// Txn starts a txn fenced by this acquisition: it commits only while the
// lock is still held, and otherwise changes nothing and returns
// ErrLockLost (ErrNotLocked if the Mutex was not held when Txn was called).
// The token is taken now, so a txn built before Unlock still carries it.
func (m *Mutex) Txn(ctx context.Context) *FencedTxn {
	return &FencedTxn{ctx: ctx, node: m.s.node, key: m.key, rev: m.Token(), lost: ErrLockLost, notHeld: ErrNotLocked}
}
