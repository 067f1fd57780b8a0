package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// TestDiskFullLeader: the leader's disk fills up. Its write fails with
// ErrNoSpace, naming the disk, and changes nothing; it stops campaigning, so
// the others elect a leader and serve writes while it refuses them at once;
// once its disk takes writes again it catches up by itself, serves writes
// and can lead. Every acknowledged write is on every member (kvtest's
// cleanup compares them).
func TestDiskFullLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		full := c.Index(c.WaitLeader())
		fullNode := c.Node(full)
		if _, err := fullNode.Put(ctx, []byte("before"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		rev := fullNode.Status().Revision
		c.SetDiskFull(full, true)
		_, err := fullNode.Put(ctx, []byte("k"), []byte("lost"))
		if !errors.Is(err, kvstore.ErrNoSpace) || !strings.Contains(err.Error(), "ENOSPC") {
			t.Fatalf("put on a leader with a full disk: %v, want ErrNoSpace naming ENOSPC", err)
		}
		next := waitLeaderOtherThan(t, c, full)
		for i := range 5 {
			if _, err := next.Put(ctx, []byte("k"), []byte(fmt.Sprint("v", i))); err != nil {
				t.Fatalf("put through the new leader: %v", err)
			}
		}
		if _, err := fullNode.Put(ctx, []byte("k"), []byte("refused")); !errors.Is(err, kvstore.ErrNoSpace) {
			t.Fatalf("put through the member with a full disk: %v, want ErrNoSpace at once", err)
		}
		// Over many election timeouts it never campaigns its way back.
		for range 200 {
			time.Sleep(10 * time.Millisecond)
			if fullNode.IsLeader() || fullNode.Status().RaftState == "Candidate" {
				t.Fatalf("the member with a full disk campaigns: %s", fullNode.Status().RaftState)
			}
		}
		c.SetDiskFull(full, false)
		c.WaitApplied() // a linearizable read on it: it has caught up
		resp, err := fullNode.Get(ctx, []byte("k"))
		if err != nil || len(resp.KVs) != 1 || string(resp.KVs[0].Value) != "v4" {
			t.Fatalf("after the disk is freed: %+v %v", resp, err)
		}
		if resp.Header.Revision != rev+5 {
			t.Fatalf("revision %d, want %d: the refused writes changed something", resp.Header.Revision, rev+5)
		}
		if _, err := fullNode.Put(ctx, []byte("k"), []byte("after")); err != nil {
			t.Fatalf("put through the recovered member: %v", err)
		}
		if err := c.TransferLeader(full); err != nil {
			t.Fatalf("the recovered member cannot lead: %v", err)
		}
	})
}

// TestDiskFullSingleMember: the only member's disk fills up. Writes fail
// with ErrNoSpace and it stops campaigning (no election loop); once the disk
// takes writes again, it finds out by itself (the probe), leads and serves.
func TestDiskFullSingleMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		n := c.WaitLeader()
		if _, err := n.Put(ctx, []byte("k"), []byte("v1")); err != nil {
			t.Fatal(err)
		}
		c.SetDiskFull(0, true)
		if _, err := n.Put(ctx, []byte("k"), []byte("lost")); !errors.Is(err, kvstore.ErrNoSpace) {
			t.Fatalf("put with a full disk: %v, want ErrNoSpace", err)
		}
		terms := n.Status().RaftTerm
		time.Sleep(10 * time.Second)
		if got := n.Status().RaftTerm; got > terms+1 {
			t.Fatalf("raft term went from %d to %d: the member keeps campaigning on a full disk", terms, got)
		}
		c.SetDiskFull(0, false)
		c.WaitLeader()
		if _, err := n.Put(ctx, []byte("k"), []byte("v2")); err != nil {
			t.Fatalf("put after the disk is freed: %v", err)
		}
		resp, err := n.Get(ctx, []byte("k"))
		if err != nil || string(resp.KVs[0].Value) != "v2" || resp.KVs[0].Version != 2 {
			t.Fatalf("after the disk is freed: %+v %v", resp, err)
		}
	})
}
