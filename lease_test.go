package kvstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

func TestLeaseGrantAttachRevoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		f := c.Followers()[0]
		g, err := f.Grant(ctx, 60)
		if err != nil || g.ID <= 0 || g.TTL != 60 {
			t.Fatalf("grant: %+v %v", g, err)
		}
		for _, k := range []string{"svc/a", "svc/b"} {
			if _, err := f.Put(ctx, []byte(k), []byte("up"), kvstore.WithLease(g.ID)); err != nil {
				t.Fatal(err)
			}
		}
		ttl, err := f.TimeToLive(ctx, g.ID, true)
		if err != nil || ttl.GrantedTTL != 60 || ttl.TTL < 59 || len(ttl.Keys) != 2 || string(ttl.Keys[0]) != "svc/a" {
			t.Fatalf("time to live: %+v %v", ttl, err)
		}
		list, err := f.Leases(ctx)
		if err != nil || len(list.IDs) != 1 || list.IDs[0] != g.ID {
			t.Fatalf("leases: %+v %v", list, err)
		}
		before := f.Status().Revision
		rev, err := f.Revoke(ctx, g.ID)
		if err != nil || rev.Header.Revision != before+1 {
			t.Fatalf("revoke: %+v %v (revision before %d): both keys go in one revision", rev, err, before)
		}
		get, err := f.Get(ctx, []byte("svc/"), kvstore.WithPrefix())
		if err != nil || get.Count != 0 {
			t.Fatalf("keys after revoke: %+v %v", get, err)
		}
		if _, err := f.Revoke(ctx, g.ID); !errors.Is(err, kvstore.ErrLeaseNotFound) {
			t.Fatalf("second revoke: %v", err)
		}
		if f.Status().Revision != rev.Header.Revision {
			t.Fatal("a failed revoke changed the store")
		}
		if ttl, err := f.TimeToLive(ctx, g.ID, false); err != nil || ttl.TTL != -1 {
			t.Fatalf("time to live of a revoked lease: %+v %v", ttl, err)
		}
	})
}

func TestLeaseGrantErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		n := c.WaitLeader()
		if _, err := n.Grant(ctx, 10, kvstore.WithLeaseID(7)); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Grant(ctx, 10, kvstore.WithLeaseID(7)); !errors.Is(err, kvstore.ErrLeaseExists) {
			t.Fatalf("grant of a live ID: %v", err)
		}
		if _, err := n.Grant(ctx, 1<<62); !errors.Is(err, kvstore.ErrTTLTooLarge) {
			t.Fatalf("huge TTL: %v", err)
		}
		if _, err := n.Grant(ctx, 10, kvstore.WithLeaseID(0)); !errors.Is(err, kvstore.ErrInvalidLeaseID) {
			t.Fatalf("WithLeaseID(0): %v", err)
		}
		// Rule 18: zero and negative TTLs are raised to the minimum, as
		// etcd raises them; the HTTP API follows the same rule.
		g, err := n.Grant(ctx, 0)
		if err != nil || g.TTL < 1 {
			t.Fatalf("TTL below the minimum is raised: %+v %v", g, err)
		}
		if neg, err := n.Grant(ctx, -5); err != nil || neg.TTL != g.TTL {
			t.Fatalf("negative TTL: %+v %v, want raised to %d", neg, err, g.TTL)
		}
		if _, err := n.KeepAliveOnce(ctx, 12345); !errors.Is(err, kvstore.ErrLeaseNotFound) {
			t.Fatalf("keep alive of an unknown lease: %v", err)
		}
	})
}

// An expired lease's keys are deleted; a lease kept alive from a follower
// survives the loss of its leader.
func TestLeaseExpiryAndKeepAliveAcrossFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		f := c.Followers()[0]
		short, err := f.Grant(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		kept, err := f.Grant(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		f.Put(ctx, []byte("short"), []byte("v"), kvstore.WithLease(short.ID))
		f.Put(ctx, []byte("kept"), []byte("v"), kvstore.WithLease(kept.ID))
		kctx, stop := context.WithCancel(ctx)
		renewals, err := f.KeepAlive(kctx, kept.ID)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if get, _ := f.Get(ctx, []byte("short")); get.Count != 0 {
			t.Fatal("the expired lease's key is still there")
		}
		old := c.Index(leader)
		c.Stop(old)
		c.WaitLeader()
		time.Sleep(10 * time.Second)
		if get, err := f.Get(ctx, []byte("kept")); err != nil || get.Count != 1 {
			t.Fatalf("the kept-alive key after failover: %+v %v", get, err)
		}
		stop()
		for range renewals { // closed once its context ends
		}
		time.Sleep(4 * time.Second)
		if get, _ := f.Get(ctx, []byte("kept")); get.Count != 0 {
			t.Fatal("the key outlived its lease once renewals stopped")
		}
		c.Restart(old)
	})
}

// Checkpoints carry a lease's remaining TTL across a leader change: the
// new leader neither restarts it at its full TTL nor expires it early.
func TestLeaseRemainingTTLSurvivesFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithLeaseCheckpointInterval(time.Second)))
		ctx := context.Background()
		leader := c.WaitLeader()
		g, err := leader.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		old := c.Index(leader)
		c.Stop(old)
		next := c.WaitLeader()
		ttl, err := next.TimeToLive(ctx, g.ID, false)
		if err != nil || ttl.TTL < 28 || ttl.TTL > 31 {
			t.Fatalf("remaining TTL after failover at 30 s of 60: %+v %v", ttl, err)
		}
		c.Restart(old)
	})
}

// Leases live in the replicated state: a restarted member, and one that
// catches up by snapshot, hold the same leases and keys.
func TestLeasesSurviveRestartAndSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithSnapshots(8, 50*time.Millisecond, 1), kvstore.WithTrailingLogs(2)))
		ctx := context.Background()
		leader := c.WaitLeader()
		lagging := c.Index(c.Followers()[0])
		c.Stop(lagging)
		var ids []int64
		for range 20 {
			g, err := leader.Grant(ctx, 600)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, g.ID)
			if _, err := leader.Put(ctx, []byte(fmt.Sprint("k", g.ID)), nil, kvstore.WithLease(g.ID)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second) // virtual: snapshots and log truncation
		n := c.Restart(lagging)
		list, err := n.Leases(ctx)
		if err != nil || len(list.IDs) != len(ids) {
			t.Fatalf("leases on the member that caught up by snapshot: %+v %v", list, err)
		}
		restarted := c.Index(leader)
		c.Stop(restarted)
		back := c.Restart(restarted)
		list, err = back.Leases(ctx)
		if err != nil || len(list.IDs) != len(ids) {
			t.Fatalf("leases after restart: %+v %v", list, err)
		}
		ttl, err := back.TimeToLive(ctx, ids[0], true)
		if err != nil || len(ttl.Keys) != 1 {
			t.Fatalf("a lease's keys after restart: %+v %v", ttl, err)
		}
	})
}

// Rule 18: a negative lease ID asked for is granted, as etcd grants it
// (its lessor refuses only 0, which asks it to choose); keys attach to it,
// it lives through a backup, and revoking it deletes them.
func TestGrantNegativeID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		n := c.WaitLeader()
		for _, id := range []int64{-1, -1 << 63} {
			g, err := n.Grant(ctx, 60, kvstore.WithLeaseID(id))
			if err != nil || g.ID != id {
				t.Fatalf("Grant(ID %d): %+v %v", id, g, err)
			}
		}
		if _, err := n.Grant(ctx, 60, kvstore.WithLeaseID(-1)); !errors.Is(err, kvstore.ErrLeaseExists) {
			t.Fatalf("grant of a live negative ID: %v", err)
		}
		if _, err := n.Put(ctx, []byte("k"), []byte("v"), kvstore.WithLease(-1)); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, []byte("k2"), []byte("v"), kvstore.WithLease(-2)); !errors.Is(err, kvstore.ErrLeaseNotFound) {
			t.Fatalf("put with an unknown negative lease: %v", err)
		}
		ttl, err := n.TimeToLive(ctx, -1, true)
		if err != nil || ttl.GrantedTTL != 60 || len(ttl.Keys) != 1 {
			t.Fatalf("TimeToLive(-1): %+v %v", ttl, err)
		}
		var backup bytes.Buffer
		if _, err := n.Backup(ctx, &backup); err != nil {
			t.Fatal(err)
		}
		st, err := kvstore.ReadBackupStatus(&backup)
		if err != nil || st.Leases != 2 || st.Keys != 1 {
			t.Fatalf("backup with negative leases: %+v %v", st, err)
		}
		if _, err := n.Revoke(ctx, -1); err != nil {
			t.Fatal(err)
		}
		if get, err := n.Get(ctx, []byte("k")); err != nil || get.Count != 0 {
			t.Fatalf("the revoked lease's key: %+v %v", get, err)
		}
	})
}
