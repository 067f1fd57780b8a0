package etcdapi_test

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A watch the server refuses is answered as etcd answers it: created and
// canceled at once with watch ID -1 and etcd's reason, which clientv3
// reports as rpctypes.ErrCompacted for a negative start revision
// (SEMANTICS.md rule 19) and as etcd's mvcc text for an empty range (rule
// 20). The stream serves on.
func TestWatchRefused(t *testing.T) {
	c := newCluster(t, 1)
	ctx := testContext(t)
	cli := c.client(t)
	first := func(ch clientv3.WatchChan) clientv3.WatchResponse {
		t.Helper()
		select {
		case resp := <-ch:
			return resp
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		return clientv3.WatchResponse{}
	}
	if resp := first(cli.Watch(ctx, "k", clientv3.WithRev(-1))); !resp.Canceled || !errors.Is(resp.Err(), rpctypes.ErrCompacted) {
		t.Errorf("negative start revision: %+v %v, want ErrCompacted", resp, resp.Err())
	}
	if resp := first(cli.Watch(ctx, "b", clientv3.WithRange("a"))); !resp.Canceled || resp.Err() == nil || resp.Err().Error() != "mvcc: watcher range is empty" {
		t.Errorf("empty range: %+v %v, want etcd's empty-range reason", resp, resp.Err())
	}

	stream, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		id     int64
		reason string
	}{{7, ""}, {-1, "mvcc: duplicate watch ID provided on the WatchStream"}, {-1, "etcdserver: mvcc: required revision has been compacted"}} {
		req := &pb.WatchCreateRequest{Key: []byte("k"), WatchId: 7}
		if i == 2 {
			req = &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: -5}
		}
		if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: req}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Created || resp.WatchId != want.id || resp.Canceled != (want.reason != "") || resp.CancelReason != want.reason {
			t.Errorf("create %d: %+v, want watch ID %d, reason %q", i, resp, want.id, want.reason)
		}
	}
}
