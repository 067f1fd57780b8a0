package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// A follower that cannot send its forwarded write to the leader (the link
// is cut in the request direction) knows the write did not happen: it keeps
// trying until the context ends and then says ErrLeaderUnreachable, never
// ErrOutcomeUnknown; the write is not in the store.
func TestForwardNotSentIsLeaderUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		f := c.Followers()[0]
		c.Cut(c.Index(f), c.Index(leader))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := f.Put(ctx, []byte("k"), []byte("v"))
		if !errors.Is(err, kvstore.ErrLeaderUnreachable) || !errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, kvstore.ErrOutcomeUnknown) {
			t.Fatalf("put through a follower cut off from the leader: %v, want ErrLeaderUnreachable with the deadline", err)
		}
		c.Heal()
		get, err := leader.Get(context.Background(), []byte("k"))
		if err != nil || len(get.KVs) != 0 {
			t.Fatalf("the write reported not sent is in the store: %+v, %v", get, err)
		}
	})
}

// A forwarded write that cannot be sent yet is sent once the link heals,
// within its deadline.
func TestForwardRetriesUntilTheLinkHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		f := c.Followers()[0]
		c.Cut(c.Index(f), c.Index(leader))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := f.Put(ctx, []byte("k"), []byte("v"))
			errc <- err
		}()
		time.Sleep(time.Second) // virtual time: several failed attempts
		select {
		case err := <-errc:
			t.Fatalf("the put returned while the link was cut: %v", err)
		default:
		}
		c.Heal()
		if err := <-errc; err != nil {
			t.Fatalf("put after the link healed: %v", err)
		}
		get, err := leader.Get(context.Background(), []byte("k"))
		if err != nil || len(get.KVs) != 1 || get.KVs[0].Version != 1 {
			t.Fatalf("the write is not in the store exactly once: %+v, %v", get, err)
		}
	})
}

// When only the reply is lost the leader did apply the write, so the
// follower cannot say it did not happen: ErrOutcomeUnknown, and indeed the
// write is committed.
func TestForwardReplyLostIsOutcomeUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		f := c.Followers()[0]
		c.Cut(c.Index(leader), c.Index(f))
		_, err := f.Put(context.Background(), []byte("k"), []byte("v"))
		if !errors.Is(err, kvstore.ErrOutcomeUnknown) || !errors.Is(err, transport.ErrUnreachable) ||
			errors.Is(err, kvstore.ErrLeaderUnreachable) {
			t.Fatalf("put whose reply was lost: %v, want ErrOutcomeUnknown", err)
		}
		get, err := leader.Get(context.Background(), []byte("k"))
		if err != nil || len(get.KVs) != 1 {
			t.Fatalf("the write whose reply was lost: %+v, %v", get, err)
		}
		c.Heal()
	})
}

// After the leader stops, a write through a follower waits for the next
// leader and is forwarded to it, instead of failing at once.
func TestForwardWaitsForTheNextLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		old := c.Index(c.WaitLeader())
		f := c.Followers()[0]
		if _, err := f.Put(context.Background(), []byte("before"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		c.Stop(old)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		put, err := f.Put(ctx, []byte("k"), []byte("v"))
		if err != nil {
			t.Fatalf("put through a follower while a new leader is elected: %v", err)
		}
		get, err := f.Get(ctx, []byte("k"))
		if err != nil || len(get.KVs) != 1 || get.KVs[0].ModRevision != put.Header.Revision {
			t.Fatalf("get after the put: %+v, %v", get, err)
		}
		c.Restart(old)
	})
}
