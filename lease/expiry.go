package lease

import (
	"container/heap"
	"math"
	"slices"
	"sync"
	"time"
)

// DefaultRetryInterval is how long Expired waits before reporting an expired
// lease again if it has not been removed or renewed meanwhile (etcd's
// expiredLeaseRetryInterval).
const DefaultRetryInterval = 3 * time.Second

// Checkpoint is the remaining TTL of one lease, as carried by a checkpoint
// command and applied with Table.Checkpoint.
type Checkpoint struct {
	ID ID
	// Remaining is the remaining TTL in seconds, rounded up, at least 1.
	Remaining int64
}

// Expirer tracks lease deadlines on the leader. It is not replicated and not
// deterministic: the caller passes the current time to every method that
// needs it (it never reads the clock). Every method is safe for concurrent
// use.
//
// An Expirer starts as a follower, tracking nothing: Promote makes it track
// the leases of the replicated Table, Demote forgets them again. While
// promoted, the caller keeps it in step with the table: Add after each
// applied grant, Remove after each applied revoke.
//
// Deadlines are kept in a heap, so Add, Remove and Renew are O(log n) and
// Expired is O(k log n) for k reported leases; times are stored as
// nanosecond offsets from the promotion time, keeping the monotonic clock
// reading if the caller's times carry one.
type Expirer struct {
	retry time.Duration

	mu      sync.Mutex
	leading bool
	// epoch is the time of the last Promote; offsets are relative to it.
	epoch  time.Time
	leases map[ID]*trackedLease
	queue  deadlineQueue
}

// trackedLease is one lease tracked by an Expirer. Times are nanoseconds
// since the Expirer's epoch.
type trackedLease struct {
	id  ID
	ttl int64 // granted TTL in seconds
	// deadline is when the lease expires.
	deadline int64
	// due orders the heap: the deadline, or, once Expired has reported the
	// lease, the time it may be reported again.
	due int64
	// checkpointed is the Remaining the replicated table holds for the lease
	// as far as this leader knows: set by Promote and Checkpoints, cleared by
	// Add and Renew.
	checkpointed int64
	// index is the lease's position in the heap.
	index int
}

// NewExpirer returns a follower Expirer that reports an expired lease again
// after retry if it is still tracked and not renewed (the revoke proposal
// may have failed). A retry of 0 or less means DefaultRetryInterval.
func NewExpirer(retry time.Duration) *Expirer {
	if retry <= 0 {
		retry = DefaultRetryInterval
	}
	return &Expirer{retry: retry, leases: make(map[ID]*trackedLease)}
}

// Promote makes e track leases as this node's leader term begins at now,
// replacing anything tracked before. Each lease gets the deadline now +
// max(its checkpointed Remaining, or its full TTL if never checkpointed,
// minTTL); pass the election timeout as minTTL so that leases do not expire
// before their holders can find the new leader. Call it once the node has
// applied every committed command (after a raft barrier), with
// Table.Leases.
func (e *Expirer) Promote(now time.Time, leases []Lease, minTTL time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leading = true
	e.epoch = now
	e.leases = make(map[ID]*trackedLease, len(leases))
	e.queue = make(deadlineQueue, 0, len(leases))
	for _, l := range leases {
		start := l.Remaining
		if start <= 0 {
			start = l.TTL
		}
		deadline := max(secondsToNanos(start), int64(minTTL))
		t, ok := e.leases[l.ID]
		if !ok {
			t = &trackedLease{id: l.ID, index: len(e.queue)}
			e.leases[l.ID] = t
			e.queue = append(e.queue, t)
		}
		t.ttl, t.deadline, t.due, t.checkpointed = l.TTL, deadline, deadline, max(l.Remaining, 0)
	}
	heap.Init(&e.queue)
}

// Demote makes e a follower: it forgets every lease.
func (e *Expirer) Demote() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leading = false
	e.leases = make(map[ID]*trackedLease)
	e.queue = nil
}

// Leading reports whether e is promoted.
func (e *Expirer) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}

// Add starts tracking lease id, granted ttl seconds at now, with the deadline
// now + ttl. Call it when a grant is applied; it does nothing on a follower.
// Adding a tracked lease restarts it as if newly granted.
func (e *Expirer) Add(id ID, ttl int64, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return
	}
	deadline := addSaturating(e.offset(now), secondsToNanos(ttl))
	if t, ok := e.leases[id]; ok {
		t.ttl, t.deadline, t.checkpointed = ttl, deadline, 0
		e.queue.setDue(t, deadline)
		return
	}
	t := &trackedLease{id: id, ttl: ttl, deadline: deadline, due: deadline}
	e.leases[id] = t
	heap.Push(&e.queue, t)
}

// Remove stops tracking lease id; call it when a revoke is applied. Removing
// an untracked lease does nothing.
func (e *Expirer) Remove(id ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.leases[id]; ok {
		heap.Remove(&e.queue, t.index)
		delete(e.leases, id)
	}
}

// Renew keeps lease id alive (etcd's KeepAlive): its deadline becomes now +
// its granted TTL, which Renew returns in seconds.
//
// clearCheckpoint reports that the replicated table holds a checkpointed
// remaining TTL for the lease that the renewal made stale: a new leader
// would start the lease from it and could expire it early. When it is true
// the caller should propose Checkpoint{ID: id, Remaining: 0} (clearing it)
// and wait for it to commit before acknowledging the renewal, as etcd does.
// Renew then considers the checkpoint cleared; should the proposal fail,
// the next Checkpoints call that finds the lease below its full TTL records
// its true remaining TTL.
//
// It fails with ErrNotLeader on a follower, ErrLeaseNotFound if id is not
// tracked and ErrLeaseExpired if the lease's deadline has passed: an expired
// lease is being revoked and cannot be revived.
func (e *Expirer) Renew(id ID, now time.Time) (ttl int64, clearCheckpoint bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return 0, false, ErrNotLeader
	}
	t, ok := e.leases[id]
	if !ok {
		return 0, false, ErrLeaseNotFound
	}
	off := e.offset(now)
	if t.deadline <= off {
		return 0, false, ErrLeaseExpired
	}
	t.deadline = addSaturating(off, secondsToNanos(t.ttl))
	e.queue.setDue(t, t.deadline)
	clearCheckpoint = t.checkpointed != 0
	t.checkpointed = 0
	return t.ttl, clearCheckpoint, nil
}

// Remaining returns how long lease id has left at now (0 once its deadline
// has passed) and whether it is tracked.
func (e *Expirer) Remaining(id ID, now time.Time) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.leases[id]
	if !ok {
		return 0, false
	}
	return time.Duration(max(t.deadline-e.offset(now), 0)), true
}

// Expired returns up to limit tracked leases whose deadline is at or before
// now, earliest deadline first (ties by ID). The caller proposes their
// revokes. A reported lease is not reported again until the retry interval
// given to NewExpirer has passed, so a failed or slow revoke is retried
// without flooding; Remove (on the applied revoke) stops it for good, and
// the lease cannot be renewed meanwhile.
func (e *Expirer) Expired(now time.Time, limit int) []ID {
	e.mu.Lock()
	defer e.mu.Unlock()
	if limit <= 0 || len(e.queue) == 0 {
		return nil
	}
	off := e.offset(now)
	retryAt := addSaturating(off, int64(e.retry))
	var ids []ID
	for len(ids) < limit && len(e.queue) > 0 && e.queue[0].due <= off {
		ids = append(ids, e.queue[0].id)
		// retryAt > off, so this loop does not see the lease again.
		e.queue.setDue(e.queue[0], retryAt)
	}
	return ids
}

// Checkpoints returns, in ascending ID order, the remaining TTL at now of
// every tracked lease whose remaining TTL in whole seconds differs from what
// the replicated table holds, as far as e knows; the caller proposes them as
// one checkpoint command, periodically. A lease never checkpointed whose
// remaining TTL is still its full TTL is left out (the table already means
// that), as are leases unchanged since the last call. Checkpoints assumes the
// returned values will be applied.
//
// The caller must put returned checkpoints and the clears requested by Renew
// into the log in the order it called the two methods (for example, call
// each and propose its command under one mutex), otherwise a clear could be
// overtaken by an older checkpoint.
func (e *Expirer) Checkpoints(now time.Time) []Checkpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	off := e.offset(now)
	var out []Checkpoint
	for _, t := range e.leases {
		rem := min(max(ceilSeconds(t.deadline-off), 1), t.ttl)
		if rem == t.checkpointed || (t.checkpointed == 0 && rem == t.ttl) {
			continue
		}
		t.checkpointed = rem
		out = append(out, Checkpoint{ID: t.id, Remaining: rem})
	}
	slices.SortFunc(out, func(a, b Checkpoint) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// NextDeadline returns the earliest time at which Expired will report a
// lease (a deadline, or a retry), and false if e tracks nothing. The caller
// can set a timer for it instead of polling.
func (e *Expirer) NextDeadline() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) == 0 {
		return time.Time{}, false
	}
	return e.epoch.Add(time.Duration(e.queue[0].due)), true
}

// Len returns the number of tracked leases.
func (e *Expirer) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.leases)
}

// offset returns now as nanoseconds since e's epoch.
func (e *Expirer) offset(now time.Time) int64 { return int64(now.Sub(e.epoch)) }

// secondsToNanos converts seconds to nanoseconds, saturating.
func secondsToNanos(s int64) int64 {
	const perSecond = int64(time.Second)
	switch {
	case s > math.MaxInt64/perSecond:
		return math.MaxInt64
	case s < math.MinInt64/perSecond:
		return math.MinInt64
	}
	return s * perSecond
}

// ceilSeconds converts nanoseconds to whole seconds, rounding up.
func ceilSeconds(ns int64) int64 {
	s := ns / int64(time.Second)
	if ns%int64(time.Second) > 0 {
		s++
	}
	return s
}

// addSaturating returns a+b, clamped to the int64 range.
func addSaturating(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// deadlineQueue is a min-heap of tracked leases by due time, then ID; each
// lease knows its index so it can be fixed or removed in O(log n).
type deadlineQueue []*trackedLease

// setDue changes the due time of queued lease t and restores the heap.
func (q *deadlineQueue) setDue(t *trackedLease, due int64) {
	t.due = due
	heap.Fix(q, t.index)
}

func (q deadlineQueue) Len() int { return len(q) }

func (q deadlineQueue) Less(i, j int) bool {
	if q[i].due != q[j].due {
		return q[i].due < q[j].due
	}
	return q[i].id < q[j].id
}

func (q deadlineQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}

func (q *deadlineQueue) Push(x any) {
	t := x.(*trackedLease)
	t.index = len(*q)
	*q = append(*q, t)
}

func (q *deadlineQueue) Pop() any {
	old := *q
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	*q = old[:n]
	return t
}
