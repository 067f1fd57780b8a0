package etcdapi_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kvstore/kvstore/etcdapi"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func keys(resp *clientv3.GetResponse) string {
	var out []string
	for _, kv := range resp.Kvs {
		if len(kv.Value) > 0 {
			out = append(out, string(kv.Key)+"="+string(kv.Value))
		} else {
			out = append(out, string(kv.Key))
		}
	}
	return fmt.Sprint(out)
}

func TestRangeOptions(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	// Through a follower, so that reads and writes cross members.
	cli := c.client(t, c.Index(c.Followers()[0]))

	first, err := cli.Put(ctx, "a/1", "z")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"a/2", "y"}, {"a/3", "x"}, {"b/1", "w"}, {"a/1", "v"}} {
		if _, err := cli.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	r1 := first.Header.Revision
	if first.Header.MemberId != etcdapi.MemberID(c.ID(c.Index(c.Followers()[0]))) || first.Header.ClusterId == 0 || first.Header.RaftTerm == 0 {
		t.Errorf("header %+v", first.Header)
	}

	tests := []struct {
		name string
		key  string
		opts []clientv3.OpOption
		want string
		more bool
		cnt  int64
	}{
		{"one key", "a/1", nil, "[a/1=v]", false, 1},
		{"prefix", "a/", []clientv3.OpOption{clientv3.WithPrefix()}, "[a/1=v a/2=y a/3=x]", false, 3},
		{"range", "a/2", []clientv3.OpOption{clientv3.WithRange("b/1")}, "[a/2=y a/3=x]", false, 2},
		{"from key", "a/3", []clientv3.OpOption{clientv3.WithFromKey()}, "[a/3=x b/1=w]", false, 2},
		{"limit", "a/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, "[a/1=v a/2=y]", true, 3},
		{"sort by value", "a/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)}, "[a/1=v a/3=x a/2=y]", false, 3},
		{"sort descending", "", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, "[b/1=w a/3=x a/2=y a/1=v]", false, 4},
		{"revision", "a/1", []clientv3.OpOption{clientv3.WithRev(r1)}, "[a/1=z]", false, 1},
		{"keys only", "a/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}, "[a/1 a/2 a/3]", false, 3},
		{"count only", "a/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}, "[]", false, 3},
		{"min mod revision", "a/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(r1 + 2)}, "[a/1=v a/3=x]", false, 3},
		{"max mod revision", "a/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxModRev(r1 + 1)}, "[a/2=y]", false, 3},
		{"max create revision", "a/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxCreateRev(r1)}, "[a/1=v]", false, 3},
		{"min create revision", "", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithMinCreateRev(r1 + 3)}, "[b/1=w]", false, 4},
		{"serializable", "b/1", []clientv3.OpOption{clientv3.WithSerializable()}, "[b/1=w]", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := cli.Get(ctx, tt.key, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(resp); got != tt.want || resp.More != tt.more || resp.Count != tt.cnt {
				t.Errorf("got %s more=%v count=%d, want %s more=%v count=%d", got, resp.More, resp.Count, tt.want, tt.more, tt.cnt)
			}
		})
	}

	if _, err := cli.Get(ctx, "a/1", clientv3.WithRev(r1+100)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("future revision: %v, want ErrFutureRev", err)
	}
	if _, err := cli.Put(ctx, "", "v"); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Errorf("empty key: %v, want ErrEmptyKey", err)
	}
	if _, err := cli.Put(ctx, "a/9", "", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
		t.Errorf("ignore value on a missing key: %v, want ErrKeyNotFound", err)
	}
	if _, err := cli.Put(ctx, "a/1", "v", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrValueProvided) {
		t.Errorf("ignore value with a value: %v, want ErrValueProvided", err)
	}
	if _, err := cli.Put(ctx, "a/1", "v", clientv3.WithLease(12345)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("unknown lease: %v, want ErrLeaseNotFound", err)
	}
}

func TestDeleteAndCompact(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)
	var revs []int64
	for i := range 3 {
		resp, err := cli.Put(ctx, fmt.Sprint("k", i), fmt.Sprint("v", i))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, resp.Header.Revision)
	}
	del, err := cli.Delete(ctx, "k", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if del.Deleted != 3 || len(del.PrevKvs) != 3 || string(del.PrevKvs[2].Value) != "v2" || del.Header.Revision != revs[2]+1 {
		t.Errorf("delete: %+v", del)
	}

	if _, err := cli.Compact(ctx, revs[1], clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "k0", clientv3.WithRev(revs[0])); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("read below the compaction: %v, want ErrCompacted", err)
	}
	old, err := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithRev(revs[1]))
	if err != nil || keys(old) != "[k0=v0 k1=v1]" {
		t.Errorf("read at the compact revision: %v %v", old, err)
	}
	if _, err := cli.Compact(ctx, revs[0]); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("compact below the compact revision: %v, want ErrCompacted", err)
	}
	if _, err := cli.Compact(ctx, revs[2]+100); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("compact a future revision: %v, want ErrFutureRev", err)
	}
}

func TestTxn(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)
	put, err := cli.Put(ctx, "x", "1")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("x"), "=", "1"),
			clientv3.Compare(clientv3.ModRevision("x"), "=", put.Header.Revision),
			clientv3.Compare(clientv3.Version("y"), "=", 0)).
		Then(clientv3.OpPut("x", "2", clientv3.WithPrevKV()),
			clientv3.OpPut("y", "1"),
			clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("x"), "<", put.Header.Revision)},
				nil,
				[]clientv3.Op{clientv3.OpGet("x")}),
		).
		Else(clientv3.OpGet("x")).
		Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || len(resp.Responses) != 3 {
		t.Fatalf("txn: %+v", resp)
	}
	if pv := resp.Responses[0].GetResponsePut().PrevKv; pv == nil || string(pv.Value) != "1" {
		t.Errorf("prev kv %v", pv)
	}
	nested := resp.Responses[2].GetResponseTxn()
	if nested == nil || nested.Succeeded || string(nested.Responses[0].GetResponseRange().Kvs[0].Value) != "2" {
		t.Errorf("nested txn %+v", nested)
	}

	// The same compares fail now: the else branch reads.
	resp, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("x"), "=", "1")).Else(clientv3.OpGet("x"), clientv3.OpGet("y")).Commit()
	if err != nil || resp.Succeeded || string(resp.Responses[1].GetResponseRange().Kvs[0].Value) != "1" {
		t.Errorf("else branch: %+v %v", resp, err)
	}

	// A compare over a prefix holds only if it holds for every key.
	resp, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("x").WithPrefix(), ">", 0), clientv3.Compare(clientv3.Value("x").WithRange("z"), "!=", "3")).Commit()
	if err != nil || !resp.Succeeded {
		t.Errorf("prefix compare: %+v %v", resp, err)
	}

	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit(); !errors.Is(err, rpctypes.ErrDuplicateKey) {
		t.Errorf("duplicate key: %v, want ErrDuplicateKey", err)
	}
	var many []clientv3.Op
	for i := range 129 {
		many = append(many, clientv3.OpPut(fmt.Sprint("m", i), "v"))
	}
	if _, err := cli.Txn(ctx).Then(many...).Commit(); !errors.Is(err, rpctypes.ErrTooManyOps) {
		t.Errorf("129 ops: %v, want ErrTooManyOps", err)
	}
	if got, err := cli.Get(ctx, "m", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || got.Count != 0 {
		t.Errorf("a refused txn changed something: %v %v", got, err)
	}
}
