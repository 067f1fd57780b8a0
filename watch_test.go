package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// collect reads events from ch until it has n or the channel closes.
func collect(t *testing.T, ch kvstore.WatchChan, n int) []kvstore.Event {
	t.Helper()
	var out []kvstore.Event
	timeout := time.After(time.Minute) // virtual
	for len(out) < n {
		select {
		case resp, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, resp.Events...)
		case <-timeout:
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

// Watches on every member see the same events, in order, including the
// deletes of a revoked lease's keys, and watches survive a leader failover.
func TestWatchOnEveryMemberAcrossFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		var chans []kvstore.WatchChan
		for _, n := range c.Nodes() {
			ch, err := n.Watch(ctx, []byte("cfg/"), kvstore.WithPrefix(), kvstore.WithPrevKV())
			if err != nil {
				t.Fatal(err)
			}
			chans = append(chans, ch)
		}
		g, err := leader.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		leader.Put(ctx, []byte("cfg/a"), []byte("1"), kvstore.WithLease(g.ID))
		leader.Put(ctx, []byte("cfg/b"), []byte("1"), kvstore.WithLease(g.ID))
		leader.Put(ctx, []byte("other"), []byte("1"))
		if _, err := leader.Revoke(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		old := c.Index(leader)
		c.Stop(old)
		next := c.WaitLeader()
		if _, err := next.Put(ctx, []byte("cfg/a"), []byte("2")); err != nil {
			t.Fatal(err)
		}
		want := "PUT cfg/a@2 PUT cfg/b@3 DELETE cfg/a@5 DELETE cfg/b@5 PUT cfg/a@6"
		for i, ch := range chans {
			if i == old {
				continue
			}
			var got string
			for j, ev := range collect(t, ch, 5) {
				if j > 0 {
					got += " "
				}
				got += fmt.Sprintf("%s %s@%d", ev.Type, ev.KV.Key, ev.KV.ModRevision)
				if ev.Type == kvstore.EventDelete && (ev.PrevKV == nil || string(ev.PrevKV.Value) != "1") {
					t.Errorf("delete without its prev kv: %+v", ev)
				}
			}
			if got != want {
				t.Errorf("watch on %s:\n got %s\nwant %s", c.ID(i), got, want)
			}
		}
		c.Restart(old)
	})
}

func TestWatchFromOldRevisionAndCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		n := c.WaitLeader()
		for i := range 5 {
			n.Put(ctx, []byte("k"), []byte(fmt.Sprint(i)))
		}
		ch, err := n.Watch(ctx, []byte("k"), kvstore.WithRev(3))
		if err != nil {
			t.Fatal(err)
		}
		if evs := collect(t, ch, 4); len(evs) != 4 || evs[0].KV.ModRevision != 3 {
			t.Fatalf("replay from revision 3: %+v", evs)
		}
		if _, err := n.Compact(ctx, 5); err != nil {
			t.Fatal(err)
		}
		// SEMANTICS.md rule 19: created, then cancelled with the compact revision.
		old, err := n.Watch(ctx, []byte("k"), kvstore.WithRev(2))
		if err != nil {
			t.Fatal(err)
		}
		resp := <-old
		if !resp.Canceled || resp.CompactRevision != 5 || !errors.Is(resp.Err, kvstore.ErrCompacted) {
			t.Fatalf("watch below the compact revision: %+v", resp)
		}
		if _, err := n.Watch(ctx, []byte("k"), kvstore.WithRev(-1)); !errors.Is(err, kvstore.ErrNegativeWatchRevision) {
			t.Fatalf("negative start revision: %v", err)
		}
		if _, err := n.Watch(ctx, []byte("k"), kvstore.WithRange([]byte("a"))); !errors.Is(err, kvstore.ErrInvalidWatchRange) {
			t.Fatalf("range end before key: %v", err)
		}
		if _, err := n.Watch(ctx, []byte("k"), kvstore.WithLimit(3)); !errors.Is(err, kvstore.ErrInvalidOpOption) {
			t.Fatalf("a Get option on a watch: %v", err)
		}
		if _, err := n.Get(ctx, []byte("k"), kvstore.OpOption{}); !errors.Is(err, kvstore.ErrInvalidOpOption) {
			t.Fatalf("the zero OpOption on a Get: %v", err)
		}
	})
}

// A watch on a closing node ends with ErrWatchClosed.
func TestWatchEndsWhenNodeCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		f := c.Followers()[0]
		ch, err := f.Watch(context.Background(), []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		c.Stop(c.Index(f))
		var last kvstore.WatchResponse
		for resp := range ch {
			last = resp
		}
		if !last.Canceled || !errors.Is(last.Err, kvstore.ErrWatchClosed) {
			t.Fatalf("last response: %+v", last)
		}
	})
}

// A follower that falls behind and installs a snapshot keeps its watches
// whole: a watch whose next revision survived in the snapshot's history
// continues without a gap; one whose next revision was compacted away ends
// with the compact revision (never a silent skip).
func TestWatchOnFollowerAcrossSnapshotInstall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithSnapshots(16, 50*time.Millisecond, 1), kvstore.WithTrailingLogs(4)))
		ctx := context.Background()
		leader := c.WaitLeader()
		f := c.Followers()[0]
		i := c.Index(f)
		kept, err := f.Watch(ctx, []byte("a/"), kvstore.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		lost, err := f.Watch(ctx, []byte("b/"), kvstore.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		c.Isolate(i)
		var rev int64
		for j := range 100 {
			resp, err := leader.Put(ctx, []byte(fmt.Sprint("a/", j)), []byte("v"))
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		}
		// b/ changes only below the compaction: its watch cannot be served.
		if _, err := leader.Put(ctx, []byte("b/x"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Compact(ctx, rev+1); err != nil {
			t.Fatal(err)
		}
		for j := range 20 {
			leader.Put(ctx, []byte(fmt.Sprint("z/", j)), []byte("v"))
		}
		time.Sleep(time.Second) // virtual: snapshot and log truncation on the leader
		c.Heal()
		c.WaitApplied()
		// The kept watch's events were compacted too (a/ at revisions 2..101,
		// compacted at 102): it must end with the compact revision.
		var last kvstore.WatchResponse
		for resp := range kept {
			last = resp
		}
		if !last.Canceled || last.CompactRevision != rev+1 {
			t.Fatalf("watch whose events were compacted while its node lagged: %+v", last)
		}
		for resp := range lost {
			last = resp
		}
		if !last.Canceled || last.CompactRevision != rev+1 {
			t.Fatalf("second watch: %+v", last)
		}
		// A watch opened after the catch-up, from the compact revision,
		// continues from the snapshot's history.
		after, err := f.Watch(ctx, []byte("z/"), kvstore.WithPrefix(), kvstore.WithRev(rev+1))
		if err != nil {
			t.Fatal(err)
		}
		if evs := collect(t, after, 20); len(evs) != 20 {
			t.Fatalf("watch from the compact revision after the snapshot: %d events", len(evs))
		}
	})
}

func TestWatchOnFollowerContinuesAcrossSnapshotInstall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithSnapshots(16, 50*time.Millisecond, 1), kvstore.WithTrailingLogs(4)))
		ctx := context.Background()
		leader := c.WaitLeader()
		f := c.Followers()[0]
		ch, err := f.Watch(ctx, []byte("c/"), kvstore.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		c.Isolate(c.Index(f))
		for j := range 100 {
			if _, err := leader.Put(ctx, []byte(fmt.Sprintf("c/%03d", j)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second) // virtual: snapshot and log truncation on the leader
		c.Heal()
		evs := collect(t, ch, 100)
		for j, ev := range evs {
			if want := fmt.Sprintf("c/%03d", j); string(ev.KV.Key) != want || ev.KV.ModRevision != int64(j+2) {
				t.Fatalf("event %d: %s@%d, want %s@%d", j, ev.KV.Key, ev.KV.ModRevision, want, j+2)
			}
		}
	})
}
