package conformance_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/conformance"
	"github.com/kvstore/kvstore/kvtest"
)

// TestNodeStoreResumesFutureWatchAtItsStart opens a watch at a revision in
// the future, restarts the node (as the restart mode does) before that
// revision is reached, and checks that the reopened watch delivers only
// what it asked for: the events from its start revision on. Resumed from
// the last delivered revision + 1, it got the revisions before its start.
func TestNodeStoreResumesFutureWatchAtItsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := kvtest.NewCluster(t, 1, kvtest.WithDisk(kvstore.LogStoreWAL))
		const start = 6
		// Ops: 1 the watch, 2 a put, then the restart before op 3.
		s := &nodeStore{c: c, n: c.WaitLeader(), restartAt: 3}
		_, w, err := s.Watch(ctx, &conformance.WatchRequest{Key: "k", StartRevision: start})
		if err != nil {
			t.Fatal(err)
		}
		var rev int64
		for i := range 8 { // revisions 2 to 9; the restart comes at 3
			res, err := s.Put(ctx, &conformance.PutRequest{Key: "k", Value: conformance.Bytes(fmt.Sprint(i))})
			if err != nil {
				t.Fatal(err)
			}
			rev = res.Revision
		}
		if s.ops < s.restartAt {
			t.Fatal("the node never restarted")
		}
		out, err := w.Drain(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, ev := range out.Events {
			got = append(got, ev.ModRevision)
		}
		if want := []int64{6, 7, 8, 9}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("a watch from revision %d, reopened across a restart at revision 2, delivered revisions %v, want %v", start, got, want)
		}
	})
}
