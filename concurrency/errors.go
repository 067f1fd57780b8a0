package concurrency

import "errors"

// Errors returned by this package, matched with errors.Is. Errors of the
// node underneath (kvstore.ErrClosed, kvstore.ErrOutcomeUnknown, ...) are
// wrapped, so they match too.
var (
	// ErrNilNode reports a nil *kvstore.Node or *Session.
	ErrNilNode = errors.New("concurrency: nil node or session")
	// ErrInvalidTTL reports a session TTL that is not positive.
	ErrInvalidTTL = errors.New("concurrency: session TTL must be positive")
	// ErrEmptyPrefix reports a mutex or election with an empty key prefix.
	ErrEmptyPrefix = errors.New("concurrency: empty key prefix")

	// ErrSessionExpired reports a session that is lost: its lease expired
	// or was revoked, it could not be renewed before it may have expired,
	// or its node closed or was removed from the cluster. Whatever the
	// session held (locks, leadership) may already belong to someone else.
	ErrSessionExpired = errors.New("concurrency: session expired")
	// ErrSessionClosed reports a session ended by its owner: Close, or the
	// end of the context it was created with.
	ErrSessionClosed = errors.New("concurrency: session closed")

	// ErrLocked reports a TryLock that found the mutex held by another
	// session.
	ErrLocked = errors.New("concurrency: mutex locked by another session")
	// ErrNotLocked reports Unlock, or a fenced txn, on a Mutex that is not
	// locked: never locked, or unlocked already.
	ErrNotLocked = errors.New("concurrency: mutex not locked")
	// ErrLockLost reports that a Mutex this holder believed it held was no
	// longer held when it acted: its key was gone (its session expired) or
	// belonged to another acquisition. A fenced txn failing with it
	// changed nothing; Unlock failing with it means the critical section
	// may not have been exclusive.
	ErrLockLost = errors.New("concurrency: mutex no longer held")

	// ErrNotLeader reports Proclaim, or a fenced txn, by an Election that
	// is not (or no longer) the leader.
	ErrNotLeader = errors.New("concurrency: election: not leader")
	// ErrNoLeader reports Leader on an election nobody campaigns in.
	ErrNoLeader = errors.New("concurrency: election: no leader")

	// ErrTooManyConflicts reports an STM that conflicted on every attempt
	// it was allowed (WithRetries); its last attempt changed nothing.
	ErrTooManyConflicts = errors.New("concurrency: stm: too many conflicts")
	// ErrInvalidIsolation reports an unknown Isolation level.
	ErrInvalidIsolation = errors.New("concurrency: stm: invalid isolation level")
)
