package concurrency

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kvstore/kvstore"
)

// DefaultTTL is a session's lease TTL in seconds unless WithTTL says
// otherwise (etcd's default).
const DefaultTTL = 60

// retryInterval is how soon a failed renewal is tried again (no leader for
// a while, a lost call), bounded by the session's deadline.
const retryInterval = 200 * time.Millisecond

// Session is a lease that a background goroutine keeps alive until the
// session ends. Mutexes and Elections attach their keys to it, so those
// keys go when the session is lost.
//
// The session ends when its owner ends it (Close, or the end of the
// context given to NewSession: Err is ErrSessionClosed; the lease is then
// revoked), or when it is lost (Err is ErrSessionExpired): the lease was
// revoked or expired, the node closed or was removed from its cluster,
// or no renewal succeeded before the lease may have expired. Done closes
// at that moment.
//
// "May have expired" is judged on this process's clock, conservatively:
// the deadline is the time a renewal was sent plus the TTL, and the
// leader, which alone keeps lease time, starts its own TTL later than
// that, when the renewal reaches it. So Done closes no later than the
// lease can expire in the cluster, as long as the two clocks run at the
// same rate; a process that pauses (GC, a stopped VM) notices only when it
// runs again, which is why a Mutex also fences writes (see Mutex).
//
// A leader change does not end a session: the new leader takes over the
// lease's remaining TTL (kvstore logs lease checkpoints), and renewals
// go to whichever member leads.
//
// A Session is safe for concurrent use.
type Session struct {
	node *kvstore.Node
	id   int64
	ttl  int64

	stop     context.CancelFunc // ends the loop
	done     chan struct{}      // closed when the session ends
	loopDone chan struct{}      // closed when the loop goroutine has returned

	mu       sync.Mutex // guards the fields below
	err      error      // why the session ended; nil while it lives
	closeErr error      // the revoke's outcome, for Close
}

// SessionOption configures NewSession.
type SessionOption func(*sessionConfig)

type sessionConfig struct {
	ttl int64
}

// WithTTL sets the session's lease TTL in seconds (default DefaultTTL).
// The node raises a TTL below its minimum (1.5 election timeouts, at least
// a second) to that minimum; Session.TTL reports what was granted. A
// shorter TTL hands a dead holder's locks on sooner and makes a live
// holder more sensitive to pauses.
func WithTTL(seconds int64) SessionOption {
	return func(c *sessionConfig) { c.ttl = seconds }
}

// NewSession grants a lease through node and keeps it alive in the
// background until ctx ends or Close is called, whichever comes first;
// ctx bounds the Grant too. The session's keys may be read and written
// through any member of the cluster, this node included.
//
// A Grant whose outcome is unknown (a leader change) is retried with the
// same lease ID, so at most one lease is granted.
func NewSession(ctx context.Context, node *kvstore.Node, opts ...SessionOption) (*Session, error) {
	if node == nil {
		return nil, ErrNilNode
	}
	cfg := sessionConfig{ttl: DefaultTTL}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.ttl <= 0 {
		return nil, fmt.Errorf("%w: %d", ErrInvalidTTL, cfg.ttl)
	}
	sent := time.Now()
	id, ttl, err := grant(ctx, node, cfg.ttl)
	if err != nil {
		return nil, err
	}
	loopCtx, stop := context.WithCancel(ctx)
	s := &Session{
		node: node, id: id, ttl: ttl, stop: stop,
		done: make(chan struct{}), loopDone: make(chan struct{}),
	}
	// ObserveLeader's channel is closed when the node closes: the session
	// learns of it at once instead of at its next renewal.
	go s.run(loopCtx, node.ObserveLeader(loopCtx), sent.Add(time.Duration(ttl)*time.Second))
	return s, nil
}

// grant grants a lease of ttl seconds under an ID it chooses, retrying an
// unknown outcome with the same ID; it returns the ID and the TTL granted.
func grant(ctx context.Context, node *kvstore.Node, ttl int64) (int64, int64, error) {
	id := rand.Int64N(1<<62) + 1
	unknown := false
	for {
		resp, err := node.Grant(ctx, ttl, kvstore.WithLeaseID(id))
		switch {
		case err == nil:
			return id, resp.TTL, nil
		case unknown && errors.Is(err, kvstore.ErrLeaseExists):
			// The earlier attempt was granted after all.
			ttlResp, err := node.TimeToLive(ctx, id, false)
			if err != nil {
				return 0, 0, fmt.Errorf("concurrency: granting a session lease: %w", err)
			}
			return id, ttlResp.GrantedTTL, nil
		case errors.Is(err, kvstore.ErrLeaseExists):
			id = rand.Int64N(1<<62) + 1 // another lease has this ID: choose again
			continue
		case transient(err):
			unknown = unknown || errors.Is(err, kvstore.ErrOutcomeUnknown)
			if serr := sleep(ctx, retryInterval); serr != nil {
				return 0, 0, fmt.Errorf("concurrency: granting a session lease: %w (last error: %v)", serr, err)
			}
			continue
		default:
			return 0, 0, fmt.Errorf("concurrency: granting a session lease: %w", err)
		}
	}
}

// run renews the lease until the session ends. It owns s.err until it
// returns.
func (s *Session) run(ctx context.Context, leader <-chan kvstore.LeaderInfo, deadline time.Time) {
	defer close(s.loopDone)
	next := time.Now().Add(s.renewInterval())
	for {
		wait := time.NewTimer(time.Until(earliest(next, deadline)))
		select {
		case <-ctx.Done():
			wait.Stop()
			s.end(fmt.Errorf("%w: %w", ErrSessionClosed, context.Cause(ctx)))
			s.revoke(deadline)
			return
		case <-s.node.Removed():
			wait.Stop()
			s.end(fmt.Errorf("%w: %w", ErrSessionExpired, kvstore.ErrRemoved))
			return
		case _, ok := <-leader:
			wait.Stop()
			if !ok && ctx.Err() == nil {
				s.end(fmt.Errorf("%w: %w", ErrSessionExpired, s.nodeGone()))
				return
			}
			if !ok {
				leader = nil // our own stop: ctx.Done() is ready too
			}
			continue
		case <-wait.C:
		}
		if !time.Now().Before(deadline) {
			s.end(fmt.Errorf("%w: not renewed within its TTL of %ds", ErrSessionExpired, s.ttl))
			return
		}
		sent := time.Now()
		renewCtx, cancel := context.WithDeadline(ctx, deadline)
		resp, err := s.node.KeepAliveOnce(renewCtx, s.id)
		cancel()
		switch {
		case err == nil:
			deadline = sent.Add(time.Duration(resp.TTL) * time.Second)
			next = sent.Add(s.renewInterval())
		case ctx.Err() != nil:
			// Ended by the owner: the next select says so.
		case errors.Is(err, kvstore.ErrClosed):
			s.end(fmt.Errorf("%w: %w", ErrSessionExpired, s.nodeGone()))
			return
		case errors.Is(err, kvstore.ErrLeaseNotFound):
			s.end(fmt.Errorf("%w: %w", ErrSessionExpired, err))
			return
		default:
			next = time.Now().Add(retryInterval)
		}
	}
}

// nodeGone says why the session's node stopped serving: ErrRemoved if it
// was removed from its cluster, else ErrClosed.
func (s *Session) nodeGone() error {
	select {
	case <-s.node.Removed():
		return kvstore.ErrRemoved
	default:
		return kvstore.ErrClosed
	}
}

func (s *Session) renewInterval() time.Duration {
	return max(time.Duration(s.ttl)*time.Second/3, 100*time.Millisecond)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// end records why the session ended and closes Done.
func (s *Session) end(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.done)
}

// revoke revokes the lease, giving up at deadline, when it expires anyway.
func (s *Session) revoke(deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, err := s.node.Revoke(ctx, s.id)
	if errors.Is(err, kvstore.ErrLeaseNotFound) || errors.Is(err, kvstore.ErrClosed) {
		err = nil // gone already, or going with its node's cluster view
	}
	if err != nil {
		err = fmt.Errorf("concurrency: revoking session lease %x: %w", s.id, err)
	}
	s.mu.Lock()
	s.closeErr = err
	s.mu.Unlock()
}

// Close ends the session and revokes its lease, which deletes every key
// attached to it (releasing its locks and leadership) in one revision. It
// waits for the revoke, at most until the lease would have expired anyway,
// and returns its error; closing a session that was already lost returns
// nil. Close is safe to call more than once and from any goroutine.
func (s *Session) Close() error {
	s.stop()
	<-s.loopDone
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// Done returns a channel that is closed when the session ends; Err then
// says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session lives; afterwards an error matching
// ErrSessionClosed (ended by its owner) or ErrSessionExpired (lost), which
// also matches the cause when there is one (kvstore.ErrRemoved,
// kvstore.ErrClosed, kvstore.ErrLeaseNotFound, the context's error).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Lease returns the session's lease ID.
func (s *Session) Lease() int64 { return s.id }

// TTL returns the lease's TTL in seconds, as granted.
func (s *Session) TTL() int64 { return s.ttl }

// Node returns the node the session was created through.
func (s *Session) Node() *kvstore.Node { return s.node }

// alive returns the session's error if it has ended, else nil.
func (s *Session) alive() error {
	select {
	case <-s.done:
		return s.Err()
	default:
		return nil
	}
}
