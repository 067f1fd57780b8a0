package concurrency_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/concurrency"
)

// newSession creates a session through node and closes it at cleanup.
func newSession(t *testing.T, node *kvstore.Node, opts ...concurrency.SessionOption) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(context.Background(), node, opts...)
	if err != nil {
		t.Fatalf("NewSession on %s: %v", node.ID(), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newMutex(t *testing.T, s *concurrency.Session, prefix string) *concurrency.Mutex {
	t.Helper()
	m, err := concurrency.NewMutex(s, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// closedWithin reports whether ch is closed (or receives) within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// isClosed reports whether ch is closed now.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// leaseAlive reports whether lease id is live, asked through node.
func leaseAlive(t *testing.T, node *kvstore.Node, id int64) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		resp, err := node.TimeToLive(ctx, id, false)
		if err == nil {
			return resp.TTL > 0
		}
		if ctx.Err() != nil || !errors.Is(err, kvstore.ErrOutcomeUnknown) && !errors.Is(err, kvstore.ErrNoLeader) {
			t.Fatalf("TimeToLive through %s: %v", node.ID(), err)
		}
		time.Sleep(10 * time.Millisecond) // the leader is changing
	}
}

func countKeys(t *testing.T, node *kvstore.Node, prefix string) int64 {
	t.Helper()
	resp, err := node.Get(context.Background(), []byte(prefix), kvstore.WithPrefix(), kvstore.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

func value(t *testing.T, node *kvstore.Node, key string) string {
	t.Helper()
	resp, err := node.Get(context.Background(), []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.KVs) == 0 {
		return ""
	}
	return string(resp.KVs[0].Value)
}
