package etcdapi_test

import (
	"fmt"
	"testing"

	"github.com/kvstore/kvstore/etcdapi"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestWatchAcrossRestart watches through one member of a multi-endpoint
// client, stops that member and writes on: clientv3 moves the watch to
// another endpoint, resuming after the last revision it received, and
// misses nothing; writes keep succeeding through the endpoints left. The
// member then restarts on its old endpoint and serves again.
func TestWatchAcrossRestart(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	watcher := c.client(t)
	ch := watcher.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	created := next(t, ch)
	if !created.Created {
		t.Fatalf("%+v", created)
	}
	// The victim is the member the watch landed on; it must not lead, so
	// that the writes need no election.
	victim := -1
	for i := range 3 {
		if etcdapi.MemberID(c.ID(i)) == created.Header.MemberId {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("watch created by an unknown member %x", created.Header.MemberId)
	}
	if c.Node(victim).IsLeader() {
		if err := c.Node(victim).TransferLeadership(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	var others []int
	for i := range 3 {
		if i != victim {
			others = append(others, i)
		}
	}
	writer := c.client(t, others...)
	put := func(i int) {
		t.Helper()
		if _, err := writer.Put(ctx, fmt.Sprint("w/", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	if got := events(next(t, ch)); got != "PUT w/0=0" {
		t.Fatalf("got %q", got)
	}
	c.stop(victim)
	for i := 1; i <= 3; i++ {
		put(i)
	}
	var got []string
	for len(got) < 3 {
		resp := next(t, ch)
		if resp.Canceled {
			t.Fatalf("watch canceled: %v", resp.Err())
		}
		if resp.Header.MemberId == created.Header.MemberId {
			t.Fatalf("events from the stopped member: %+v", resp)
		}
		for _, ev := range resp.Events {
			got = append(got, string(ev.Kv.Key))
		}
	}
	if fmt.Sprint(got) != "[w/1 w/2 w/3]" {
		t.Errorf("after the member stopped the watch got %v", got)
	}

	c.restart(victim)
	c.WaitApplied()
	back := c.client(t, victim)
	resp, err := back.Get(ctx, "w/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 4 {
		t.Errorf("the restarted member: %+v %v, want 4 keys", resp, err)
	}
}
