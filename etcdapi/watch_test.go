package etcdapi_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// next returns the watch's next response, failing after a deadline.
func next(t *testing.T, ch clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case resp, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return resp
	case <-time.After(30 * time.Second):
		t.Fatal("no watch response within 30s")
	}
	panic("unreachable")
}

// events renders a response's events as TYPE key=value (prev).
func events(resp clientv3.WatchResponse) string {
	var out []string
	for _, ev := range resp.Events {
		s := fmt.Sprintf("%s %s=%s", ev.Type, ev.Kv.Key, ev.Kv.Value)
		if ev.PrevKv != nil {
			s += fmt.Sprintf(" (%s)", ev.PrevKv.Value)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func TestWatch(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)
	// Watches are served by every member: this client watches through a
	// follower while another writes through the leader.
	follower := c.client(t, c.Index(c.Followers()[0]))

	// Written through the follower, so that it has applied them before
	// the live watch starts there.
	first, err := follower.Put(ctx, "w/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := follower.Put(ctx, "w/b", "1"); err != nil {
		t.Fatal(err)
	}

	// Several watches on one stream (clientv3 shares one per context):
	// from a past revision with prev-kv, a prefix from now on, one key
	// without puts.
	past := follower.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision), clientv3.WithPrevKV())
	live := follower.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	deletes := follower.Watch(ctx, "w/a", clientv3.WithFilterPut())
	if resp := next(t, live); !resp.Created {
		t.Fatalf("first response %+v, want created", resp)
	}

	if _, err := cli.Put(ctx, "w/a", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "w/a"); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for n := 0; n < 4; {
		resp := next(t, past)
		n += len(resp.Events)
		seen = append(seen, events(resp))
	}
	if got, want := strings.Join(seen, ", "), "PUT w/a=1, PUT w/b=1, PUT w/a=2 (1), DELETE w/a= (2)"; got != want {
		t.Errorf("past watch got %q, want %q", got, want)
	}
	if got := events(next(t, live)); got != "PUT w/a=2" {
		t.Errorf("live watch got %q", got)
	}
	if got := events(next(t, live)); got != "DELETE w/a=" {
		t.Errorf("live watch got %q", got)
	}
	resp := next(t, deletes)
	if got := events(resp); got != "DELETE w/a=" || resp.Events[0].Type != mvccpb.DELETE {
		t.Errorf("filtered watch got %q", got)
	}

	// RequestProgress answers every watch of the stream with a bookmark.
	if err := follower.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision
	for _, ch := range []clientv3.WatchChan{live, deletes} {
		resp := next(t, ch)
		if !resp.IsProgressNotify() || resp.Header.Revision != rev {
			t.Errorf("after RequestProgress: %+v, want a progress notification at %d", resp, rev)
		}
	}
}

func TestWatchCancel(t *testing.T) {
	c := newCluster(t, 1)
	ctx := testContext(t)
	cli := c.client(t)
	wctx, cancel := testContextCancel(t)
	ch := cli.Watch(wctx, "k", clientv3.WithCreatedNotify())
	if resp := next(t, ch); !resp.Created {
		t.Fatalf("%+v", resp)
	}
	other := cli.Watch(ctx, "k")
	cancel()
	for range ch {
	}
	// The other watch on the same client still works.
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got := events(next(t, other)); got != "PUT k=v" {
		t.Errorf("got %q", got)
	}
}

func TestWatchCompacted(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	// One member: a compaction is applied on the member that answers it
	// first, and the watch must go there.
	cli := c.client(t, 0)
	var last int64
	for i := range 3 {
		resp, err := cli.Put(ctx, "k", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
	}
	if _, err := cli.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	resp := next(t, cli.Watch(ctx, "k", clientv3.WithRev(last-1)))
	if !resp.Canceled || resp.CompactRevision != last || !errors.Is(resp.Err(), rpctypes.ErrCompacted) {
		t.Errorf("watch from a compacted revision: %+v (err %v), want canceled with compact revision %d", resp, resp.Err(), last)
	}
}

// TestWatchFragment watches with fragmentation: one txn's events larger
// than a message arrive whole, reassembled by clientv3.
func TestWatchFragment(t *testing.T) {
	c := newCluster(t, 1, kvtest.WithNodeOptions(kvstore.WithMaxRequestBytes(4<<20)))
	ctx := testContext(t)
	cli := c.client(t)
	ch := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFragment())
	value := strings.Repeat("v", 200*1024)
	var ops []clientv3.Op
	for i := range 10 {
		ops = append(ops, clientv3.OpPut(fmt.Sprint("f/", i), value))
	}
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	if resp := next(t, ch); len(resp.Events) != 10 {
		t.Errorf("got %d events, want 10", len(resp.Events))
	}
}
