package kvstore_test

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/kvtest"
)

// TestRestoreStartsAtTermOne pins the choice DESIGN.md explains (Root
// package, backup.go, restore.go): a restored cluster is a new cluster
// whose raft terms start again, at 1, whatever term the backed-up cluster
// had reached; its first write still gets the revision after the
// backup's, and answers carry the new cluster's term.
func TestRestoreStartsAtTermOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := kvtest.NewCluster(t, 3)
		for range 3 { // each lost leader costs the old cluster at least a term
			leader := c.WaitLeader()
			mustPut(t, leader, "k", "v")
			i := c.Index(leader)
			c.Stop(i)
			c.WaitLeader()
			c.Restart(i)
		}
		leader := c.WaitLeader()
		oldTerm := leader.Status().RaftTerm
		if oldTerm < 4 {
			t.Fatalf("the old cluster is at term %d after three leader losses", oldTerm)
		}
		var buf bytes.Buffer
		info, err := leader.Backup(ctx, &buf)
		if err != nil {
			t.Fatal(err)
		}

		nodes := restoreCluster(t, buf.Bytes(), "restored")
		newLeader := waitLeaderOf(t, nodes)
		// The first election is at term 1; a split vote may cost another.
		if term := newLeader.Status().RaftTerm; term < 1 || term > 2 {
			t.Fatalf("restored cluster at term %d, want its first (1, or 2 after a split vote); the old one was at %d", term, oldTerm)
		}
		put, err := newLeader.Put(ctx, b("after"), b("restore"))
		if err != nil {
			t.Fatal(err)
		}
		if put.Header.Revision != info.Revision+1 || put.Header.RaftTerm != newLeader.Status().RaftTerm || put.Header.RaftTerm >= oldTerm {
			t.Fatalf("first write after restore: header %+v, want revision %d and the new cluster's term (old term %d)", put.Header, info.Revision+1, oldTerm)
		}
	})
}
