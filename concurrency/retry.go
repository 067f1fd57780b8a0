package concurrency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/transport"
)

// transient reports an error after which the same request may succeed:
// no leader, or a write whose outcome is unknown because leadership
// changed. Only requests that are idempotent may be retried on it; this
// package retries its lock, election and cleanup steps, which are, and
// never an STM commit or a user's txn, which may not be.
func transient(err error) bool {
	return errors.Is(err, kvstore.ErrOutcomeUnknown) ||
		errors.Is(err, kvstore.ErrNoLeader) ||
		errors.Is(err, kvstore.ErrNotLeader) ||
		errors.Is(err, kvstore.ErrLeaderUnreachable) ||
		errors.Is(err, transport.ErrUnreachable)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retry runs an idempotent request until it succeeds, fails with an error
// that is not transient, or ctx ends.
func retry[R any](ctx context.Context, node *kvstore.Node, req func() (R, error)) (R, error) {
	for {
		resp, err := req()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return resp, err
		}
		if serr := sleep(ctx, retryInterval); serr != nil {
			return resp, fmt.Errorf("%w (last error: %w)", serr, err)
		}
	}
}

// cleanupContext bounds a cleanup (deleting a waiter's key, resigning)
// that must run even though the caller's ctx has ended: by the session's
// TTL, after which the lease is gone anyway.
func cleanupContext(ctx context.Context, s *Session) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.ttl)*time.Second)
}

// deleteOwn deletes key if it is still the generation created at rev:
// never a later one. It reports whether it deleted it.
func deleteOwn(ctx context.Context, node *kvstore.Node, key []byte, rev int64) (bool, error) {
	resp, err := retry(ctx, node, func() (*kvstore.TxnResponse, error) {
		return node.Txn(ctx).
			If(kvstore.Compare(kvstore.CreateRevision(key), "=", rev)).
			Then(kvstore.OpDelete(key)).
			Commit()
	})
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// claim creates key with value, attached to the session's lease, unless it
// exists; either way it returns the key's create revision and the first
// key under prefix by create revision (the holder). It is idempotent for
// one session, so it is retried on an unknown outcome.
func claim(ctx context.Context, s *Session, prefix string, key, value []byte) (rev int64, holder *kvstore.KeyValue, existing *kvstore.KeyValue, err error) {
	first := kvstore.OpGet([]byte(prefix), kvstore.WithPrefix(),
		kvstore.WithSort(mvcc.SortByCreateRevision, mvcc.SortAscend), kvstore.WithLimit(1))
	resp, err := retry(ctx, s.node, func() (*kvstore.TxnResponse, error) {
		return s.node.Txn(ctx).
			If(kvstore.Compare(kvstore.CreateRevision(key), "=", 0)).
			Then(kvstore.OpPut(key, value, kvstore.WithLease(s.id)), first).
			Else(kvstore.OpGet(key), first).
			Commit()
	})
	if err != nil {
		return 0, nil, nil, err
	}
	if resp.Succeeded {
		rev = resp.Header.Revision
	} else {
		kvs := resp.Responses[0].Get.KVs
		if len(kvs) == 0 {
			return 0, nil, nil, fmt.Errorf("concurrency: %s vanished inside a txn", key)
		}
		existing = &kvs[0]
		rev = existing.CreateRevision
	}
	if kvs := resp.Responses[1].Get.KVs; len(kvs) > 0 {
		holder = &kvs[0]
	}
	return rev, holder, existing, nil
}

// waitPredecessors blocks until no key under prefix was created before
// rev, as etcd's waitDeletes: it watches only the newest of those keys
// for its deletion, then looks again, so each waiter wakes once, when the
// waiter ahead of it goes, not on every change (no thundering herd). It
// gives up when ctx ends or the session is lost.
func waitPredecessors(ctx context.Context, s *Session, prefix string, rev int64) error {
	if rev <= 1 {
		return nil
	}
	for {
		resp, err := retry(ctx, s.node, func() (*kvstore.GetResponse, error) {
			return s.node.Get(ctx, []byte(prefix), kvstore.WithPrefix(),
				kvstore.WithCreateRevisionRange(0, rev-1),
				kvstore.WithSort(mvcc.SortByCreateRevision, mvcc.SortDescend), kvstore.WithLimit(1),
				kvstore.WithKeysOnly())
		})
		if err != nil {
			return err
		}
		if len(resp.KVs) == 0 {
			return nil
		}
		if err := waitDelete(ctx, s, resp.KVs[0].Key, resp.Header.Revision); err != nil {
			return err
		}
	}
}

// waitDelete blocks until key, which existed at rev, is deleted (or until
// its watch is compacted away: the caller looks again either way).
func waitDelete(ctx context.Context, s *Session, key []byte, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := s.node.Watch(wctx, key, kvstore.WithRev(rev+1), kvstore.WithFilterPut())
	if err != nil {
		return err
	}
	for {
		select {
		case resp, ok := <-changes:
			switch {
			case !ok:
				return ctx.Err()
			case resp.Canceled && errors.Is(resp.Err, kvstore.ErrCompacted):
				return nil
			case resp.Canceled && errors.Is(resp.Err, kvstore.ErrWatchClosed):
				return fmt.Errorf("%w: %w", kvstore.ErrClosed, resp.Err)
			case resp.Canceled:
				return resp.Err
			}
			for _, ev := range resp.Events {
				if ev.Type == kvstore.EventDelete {
					return nil
				}
			}
		case <-s.done:
			return s.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
