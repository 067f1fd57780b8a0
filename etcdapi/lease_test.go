package etcdapi_test

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLease(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t, c.Index(c.Followers()[0]))

	grant, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if grant.ID == 0 || grant.TTL != 60 {
		t.Fatalf("grant %+v", grant)
	}
	if _, err := cli.Put(ctx, "l/a", "1", clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "l/b", "1", clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
	// clientv3 has no option for a chosen ID; the raw API has.
	raw := pb.NewLeaseClient(cli.ActiveConnection())
	if own, err := raw.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 777, TTL: 30}); err != nil || own.ID != 777 {
		t.Fatalf("grant with an ID: %+v %v", own, err)
	}
	if _, err := raw.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 777, TTL: 30}); rpctypes.Error(err) != rpctypes.ErrLeaseExist {
		t.Errorf("grant an existing ID: %v, want ErrLeaseExist", err)
	}

	ttl, err := cli.TimeToLive(ctx, grant.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL != 60 || ttl.TTL <= 0 || ttl.TTL > 60 || len(ttl.Keys) != 2 || string(ttl.Keys[0]) != "l/a" {
		t.Errorf("time to live %+v", ttl)
	}
	leases, err := cli.Leases(ctx)
	if err != nil || len(leases.Leases) != 2 {
		t.Errorf("leases %+v %v", leases, err)
	}

	ka, err := cli.KeepAliveOnce(ctx, grant.ID)
	if err != nil || ka.TTL != 60 || ka.ID != grant.ID {
		t.Errorf("keep alive once %+v %v", ka, err)
	}
	kctx, cancel := testContextCancel(t)
	stream, err := cli.KeepAlive(kctx, grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if resp := <-stream; resp == nil || resp.TTL != 60 {
		t.Errorf("keep alive stream %+v", resp)
	}
	cancel()

	if _, err := cli.Revoke(ctx, grant.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := cli.Get(ctx, "l/", clientv3.WithPrefix()); err != nil || len(got.Kvs) != 0 {
		t.Errorf("keys of a revoked lease: %v %v", got, err)
	}
	if _, err := cli.Revoke(ctx, grant.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("revoke twice: %v, want ErrLeaseNotFound", err)
	}
	if _, err := cli.KeepAliveOnce(ctx, grant.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("keep alive of a revoked lease: %v, want ErrLeaseNotFound", err)
	}
	if ttl, err := cli.TimeToLive(ctx, grant.ID); err != nil || ttl.TTL != -1 {
		t.Errorf("time to live of a revoked lease: %+v %v, want TTL -1", ttl, err)
	}
}
