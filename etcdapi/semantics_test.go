package etcdapi_test

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Two corners checked against etcd v3.7.3's server code, over the wire.
//
// SEMANTICS.md rule 8: a Txn compare on the empty key is ErrEmptyKey with
// a range end too, "\x00" (clientv3's WithPrefix of "") included: etcd's
// checkTxnRequest refuses any compare whose key is empty.
//
// Rule 18: a LeaseGrant asking for a negative ID is granted that ID: etcd
// picks an ID only for 0, and its lessor refuses only 0.
func TestTxnEmptyKeyAndNegativeLease(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t, c.Index(c.Followers()[0]))
	put, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmp := range []clientv3.Cmp{
		clientv3.Compare(clientv3.Version("").WithPrefix(), ">", 0),
		clientv3.Compare(clientv3.Version("").WithRange("\x00"), ">", 0),
	} {
		_, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut("k", "w")).Commit()
		if !errors.Is(err, rpctypes.ErrEmptyKey) {
			t.Errorf("compare on %q up to %q: %v, want ErrEmptyKey", cmp.Key, cmp.RangeEnd, err)
		}
	}
	if get, err := cli.Get(ctx, "k"); err != nil || get.Kvs[0].ModRevision != put.Header.Revision {
		t.Errorf("after the refused txns: %+v %v", get, err)
	}

	g, err := clientv3.RetryLeaseClient(cli).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: -5, TTL: 60})
	if err != nil || g.ID != -5 {
		t.Fatalf("LeaseGrant ID -5: %+v %v", g, err)
	}
	if _, err := cli.Put(ctx, "leased", "x", clientv3.WithLease(-5)); err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx, -5, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 60 || len(ttl.Keys) != 1 {
		t.Errorf("TimeToLive(-5): %+v %v", ttl, err)
	}
	if ka, err := cli.KeepAliveOnce(ctx, -5); err != nil || ka.TTL != 60 {
		t.Errorf("KeepAliveOnce(-5): %+v %v", ka, err)
	}
	if _, err := cli.Revoke(ctx, -5); err != nil {
		t.Fatal(err)
	}
	if get, err := cli.Get(ctx, "leased"); err != nil || get.Count != 0 {
		t.Errorf("the revoked lease's key: %+v %v", get, err)
	}
}
