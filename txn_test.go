package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// onClusters runs fn, as subtests, on the leader of a one-node and of a
// three-node in-memory cluster, each inside its own synctest bubble.
func onClusters(t *testing.T, fn func(t *testing.T, leader *kvstore.Node, nodes []*kvstore.Node)) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprint(size, "-node"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nodes := startCluster(t, size)
				fn(t, leaderOf(t, nodes), nodes)
			})
		})
	}
}

func mustPut(t *testing.T, n *kvstore.Node, key, value string) int64 {
	t.Helper()
	res, err := n.Put(context.Background(), []byte(key), []byte(value))
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return res.Header.Revision
}

// state returns the store revision and the keys and values it holds.
func state(t *testing.T, n *kvstore.Node) (int64, string) {
	t.Helper()
	res, err := n.Get(context.Background(), []byte{0}, kvstore.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, kv := range res.KVs {
		s += fmt.Sprintf("%s=%s ", kv.Key, kv.Value)
	}
	return res.Header.Revision, s
}

func b(s string) []byte { return []byte(s) }

func TestTxnCompareAndSwap(t *testing.T) {
	onClusters(t, func(t *testing.T, n *kvstore.Node, _ []*kvstore.Node) {
		ctx := context.Background()
		mustPut(t, n, "k", "v1") // 2
		cas := func(from, to string) *kvstore.TxnResponse {
			t.Helper()
			resp, err := n.Txn(ctx).
				If(kvstore.Compare(kvstore.Value(b("k")), "=", from)).
				Then(kvstore.OpPut(b("k"), b(to), kvstore.WithPrevKV()), kvstore.OpGet(b("k"))).
				Else(kvstore.OpGet(b("k"))).
				Commit()
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		resp := cas("v1", "v2")
		if !resp.Succeeded || resp.Header.Revision != 3 || resp.Header.MemberID == "" || resp.Header.RaftTerm == 0 || len(resp.Responses) != 2 {
			t.Fatalf("swap: %+v", resp)
		}
		put, get := resp.Responses[0], resp.Responses[1]
		if put.Put == nil || put.Get != nil || put.Delete != nil || put.Txn != nil || string(put.Put.PrevKV.Value) != "v1" || put.Put.Header.Revision != 3 {
			t.Fatalf("put response: %+v", put)
		}
		if get.Get == nil || string(get.Get.KVs[0].Value) != "v2" || get.Get.Header.Revision != 3 {
			t.Fatalf("get response: %+v", get)
		}
		// The same swap now fails: Else runs, nothing changes.
		resp = cas("v1", "v3")
		if resp.Succeeded || resp.Header.Revision != 3 || len(resp.Responses) != 1 || resp.Responses[0].Get == nil {
			t.Fatalf("failed swap: %+v", resp)
		}
		if v := resp.Responses[0].Get.KVs[0].Value; string(v) != "v2" {
			t.Fatalf("else branch read %q", v)
		}
		if rev, s := state(t, n); rev != 3 || s != "k=v2 " {
			t.Fatalf("after failed swap: revision %d, %s", rev, s)
		}
	})
}

// Every target with every operator, against an operand below, equal to and
// above the key's field, with operands of several integer types, and the
// missing-key cases of SEMANTICS.md rule 11.
func TestTxnCompareTargetsAndResults(t *testing.T) {
	onClusters(t, func(t *testing.T, n *kvstore.Node, _ []*kvstore.Node) {
		ctx := context.Background()
		mustPut(t, n, "a", "1") // 2
		mustPut(t, n, "a", "2") // 3: value 2, version 2, create 2, mod 3, lease 0
		mustPut(t, n, "z", "x") // 4
		targets := []struct {
			name                string
			target              func([]byte) kvstore.Cmp
			below, equal, above any
		}{
			{"Value", kvstore.Value, "1", b("2"), "3"},
			{"Version", kvstore.Version, 1, int64(2), uint8(3)},
			{"CreateRevision", kvstore.CreateRevision, int32(1), 2, uint(3)},
			{"ModRevision", kvstore.ModRevision, int16(2), 3, uint64(4)},
			{"LeaseValue", kvstore.LeaseValue, -1, 0, int8(1)},
		}
		holds := map[string]func(order int) bool{
			"=":  func(o int) bool { return o == 0 },
			"!=": func(o int) bool { return o != 0 },
			"<":  func(o int) bool { return o < 0 },
			">":  func(o int) bool { return o > 0 },
		}
		check := func(name string, c kvstore.Cmp, want bool) {
			t.Helper()
			resp, err := n.Txn(ctx).If(c).Commit()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if resp.Succeeded != want || resp.Header.Revision != 4 {
				t.Errorf("%s: succeeded %v at revision %d, want %v at 4", name, resp.Succeeded, resp.Header.Revision, want)
			}
		}
		for _, tg := range targets {
			// order is the key's field compared with the operand.
			for _, operand := range []struct {
				v     any
				order int
			}{{tg.below, 1}, {tg.equal, 0}, {tg.above, -1}} {
				for result, holds := range holds {
					name := fmt.Sprintf("%s(a) %s %T(%v)", tg.name, result, operand.v, operand.v)
					check(name, kvstore.Compare(tg.target(b("a")), result, operand.v), holds(operand.order))
				}
			}
		}
		// Rule 11: a missing key fails every Value compare; other targets
		// compare against 0.
		missing := b("missing")
		check("rule 11: Value(missing) = empty", kvstore.Compare(kvstore.Value(missing), "=", ""), false)
		check("rule 11: Value(missing) != x", kvstore.Compare(kvstore.Value(missing), "!=", "x"), false)
		check("rule 11: Version(missing) = 0", kvstore.Compare(kvstore.Version(missing), "=", 0), true)
		check("rule 11: CreateRevision(missing) < 1", kvstore.Compare(kvstore.CreateRevision(missing), "<", 1), true)
		check("rule 11: ModRevision(missing) = 0", kvstore.Compare(kvstore.ModRevision(missing), "=", 0), true)
		check("rule 11: LeaseValue(missing) = 0", kvstore.Compare(kvstore.LeaseValue(missing), "=", 0), true)
	})
}

// Rule 11 on ranges: a compare holds only if it holds for every key; on an
// empty range a Value compare fails and the others compare against 0. Rule
// 8: an end at or before the key is an empty range.
func TestTxnRangeComparesRule11(t *testing.T) {
	onClusters(t, func(t *testing.T, n *kvstore.Node, _ []*kvstore.Node) {
		mustPut(t, n, "a1", "x") // 2
		mustPut(t, n, "a2", "x") // 3
		mustPut(t, n, "a3", "y") // 4
		cases := []struct {
			name string
			c    kvstore.Cmp
			want bool
		}{
			{"prefix: one key differs", kvstore.Compare(kvstore.Value(b("a")), "=", "x").WithPrefix(), false},
			{"prefix before Compare", kvstore.Compare(kvstore.Value(b("a")).WithPrefix(), "<", "z"), true},
			{"range: every key holds", kvstore.Compare(kvstore.Value(b("a1")), "=", "x").WithRange(b("a3")), true},
			{"prefix: mod revisions", kvstore.Compare(kvstore.ModRevision(b("a")), ">", 1).WithPrefix(), true},
			{"prefix: versions", kvstore.Compare(kvstore.Version(b("a")), "=", 1).WithPrefix(), true},
			{"empty range: version 0", kvstore.Compare(kvstore.Version(b("c")), "=", 0).WithPrefix(), true},
			{"empty range: value fails", kvstore.Compare(kvstore.Value(b("c")), "!=", "x").WithPrefix(), false},
			{"rule 8: end before key", kvstore.Compare(kvstore.Version(b("a3")), "=", 0).WithRange(b("a1")), true},
		}
		for _, c := range cases {
			resp, err := n.Txn(context.Background()).If(c.c).Commit()
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if resp.Succeeded != c.want {
				t.Errorf("%s: succeeded %v, want %v", c.name, resp.Succeeded, c.want)
			}
		}
	})
}

// Rule 12: nested compares see the store before the txn, reads see the
// txn's earlier writes. Rule 14: a nested txn's header revision is 0, a
// nested op reports the revision as of that point.
func TestTxnNestedRules12And14(t *testing.T) {
	onClusters(t, func(t *testing.T, n *kvstore.Node, _ []*kvstore.Node) {
		mustPut(t, n, "a", "old") // 2
		a := b("a")
		resp, err := n.Txn(context.Background()).
			If(kvstore.Compare(kvstore.Value(a), "=", "old")).
			Then(
				kvstore.OpGet(a),
				kvstore.OpPut(a, b("new")),
				kvstore.OpTxn(
					[]kvstore.Cmp{kvstore.Compare(kvstore.Value(a), "=", "old")}, // evaluated before the txn
					[]kvstore.Op{kvstore.OpPut(b("b"), b("nested")), kvstore.OpGet(a)},
					[]kvstore.Op{kvstore.OpGet(a)},
				),
				kvstore.OpTxn(
					[]kvstore.Cmp{kvstore.Compare(kvstore.Version(b("zz")), ">", 0)},
					[]kvstore.Op{kvstore.OpPut(b("zz"), nil)},
					[]kvstore.Op{kvstore.OpGet(b("b"))},
				),
			).Commit()
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Responses
		if !resp.Succeeded || resp.Header.Revision != 3 || len(r) != 4 {
			t.Fatalf("txn: %+v", resp)
		}
		if r[0].Get.Header.Revision != 2 || string(r[0].Get.KVs[0].Value) != "old" {
			t.Errorf("read before the write: %+v", r[0].Get)
		}
		if r[1].Put.Header.Revision != 3 {
			t.Errorf("put: %+v", r[1].Put)
		}
		then := r[2].Txn
		if then == nil || !then.Succeeded || then.Header.Revision != 0 || then.Header.MemberID != resp.Header.MemberID {
			t.Fatalf("nested then: %+v", then)
		}
		if then.Responses[0].Put == nil || string(then.Responses[1].Get.KVs[0].Value) != "new" || then.Responses[1].Get.Header.Revision != 3 {
			t.Errorf("nested then responses: %+v", then.Responses)
		}
		els := r[3].Txn
		if els == nil || els.Succeeded || els.Header.Revision != 0 || len(els.Responses) != 1 || string(els.Responses[0].Get.KVs[0].Value) != "nested" {
			t.Fatalf("nested else: %+v", els)
		}
		if rev, s := state(t, n); rev != 3 || s != "a=new b=nested " {
			t.Fatalf("after: revision %d, %s", rev, s)
		}
	})
}

// A txn without writes is served without raft and leaves the revision as
// it is; one whose writes are all in the branch that does not run goes
// through raft and changes nothing (rule 14: it reports the current
// revision). A txn of serializable reads is answered by a follower.
func TestTxnReadOnly(t *testing.T) {
	onClusters(t, func(t *testing.T, n *kvstore.Node, nodes []*kvstore.Node) {
		ctx := context.Background()
		a := b("a")
		mustPut(t, n, "a", "1") // 2
		txns := map[string]*kvstore.Txn{
			"empty":        n.Txn(ctx),
			"compare only": n.Txn(ctx).If(kvstore.Compare(kvstore.Value(a), "=", "1")),
			"gets":         n.Txn(ctx).Then(kvstore.OpGet(a), kvstore.OpGet(a, kvstore.WithPrefix(), kvstore.WithCountOnly())),
			"nested gets":  n.Txn(ctx).Then(kvstore.OpTxn(nil, nil, []kvstore.Op{kvstore.OpGet(a)})),
			"else get":     n.Txn(ctx).If(kvstore.Compare(kvstore.Value(a), "=", "2")).Else(kvstore.OpGet(a, kvstore.WithSerializable())),
			"writes not run": n.Txn(ctx).If(kvstore.Compare(kvstore.Value(a), "=", "1")).
				Then(kvstore.OpGet(a)).
				Else(kvstore.OpPut(a, b("2")), kvstore.OpTxn(nil, []kvstore.Op{kvstore.OpDelete(b("c"))}, nil)),
		}
		for name, txn := range txns {
			resp, err := txn.Commit()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if resp.Header.Revision != 2 {
				t.Errorf("%s: header revision %d, want 2", name, resp.Header.Revision)
			}
			if rev, s := state(t, n); rev != 2 || s != "a=1 " {
				t.Fatalf("%s: revision %d, %s", name, rev, s)
			}
		}
		for _, f := range nodes {
			if f == n {
				continue
			}
			// A follower answers serializable reads from its own state.
			txn := f.Txn(ctx).If(kvstore.Compare(kvstore.Version(a), ">", 0)).
				Then(kvstore.OpGet(a, kvstore.WithSerializable()), kvstore.OpTxn(nil, []kvstore.Op{kvstore.OpGet(a, kvstore.WithSerializable())}, nil))
			deadline := time.Now().Add(10 * time.Second)
			for {
				resp, err := txn.Commit()
				if err != nil {
					t.Fatalf("serializable txn on a follower: %v", err)
				}
				if resp.Succeeded {
					if resp.Header.Revision != 2 || string(resp.Responses[0].Get.KVs[0].Value) != "1" {
						t.Fatalf("follower txn: %+v", resp)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("follower never saw a")
				}
				time.Sleep(time.Millisecond) // virtual time
			}
		}
	})
}

// Every bad txn gets a typed error and changes nothing (DESIGN.md invariant
// 6), whether it is caught before anything is sent or by the store.
func TestTxnErrorsChangeNothing(t *testing.T) {
	onClusters(t, func(t *testing.T, n *kvstore.Node, _ []*kvstore.Node) {
		ctx := context.Background()
		a, k := b("a"), b("k")
		mustPut(t, n, "a", "1") // 2
		put := kvstore.OpPut(k, b("v"))
		aIs1 := kvstore.Compare(kvstore.Value(a), "=", "1")
		many := func(n int, op func(i int) kvstore.Op) []kvstore.Op {
			ops := make([]kvstore.Op, n)
			for i := range ops {
				ops[i] = op(i)
			}
			return ops
		}
		cmps129 := make([]kvstore.Cmp, 129)
		for i := range cmps129 {
			cmps129[i] = aIs1
		}
		putN := func(i int) kvstore.Op { return kvstore.OpPut(b(fmt.Sprint("k", i)), nil) }
		cases := []struct {
			name string
			txn  *kvstore.Txn
			want error
		}{
			{"unknown result", n.Txn(ctx).If(kvstore.Compare(kvstore.Value(a), "==", "1")).Then(put), kvstore.ErrInvalidCompare},
			{"integer Value operand", n.Txn(ctx).If(kvstore.Compare(kvstore.Value(a), "=", 1)).Then(put), kvstore.ErrInvalidCompare},
			{"string Version operand", n.Txn(ctx).If(kvstore.Compare(kvstore.Version(a), "=", "1")).Then(put), kvstore.ErrInvalidCompare},
			{"nil operand", n.Txn(ctx).If(kvstore.Compare(kvstore.LeaseValue(a), "=", nil)).Then(put), kvstore.ErrInvalidCompare},
			{"operand beyond int64", n.Txn(ctx).If(kvstore.Compare(kvstore.ModRevision(a), "<", uint64(math.MaxUint64))).Then(put), kvstore.ErrInvalidCompare},
			{"target without Compare", n.Txn(ctx).If(kvstore.Value(a)).Then(put), kvstore.ErrInvalidCompare},
			{"zero Cmp", n.Txn(ctx).If(kvstore.Cmp{}).Then(put), kvstore.ErrInvalidCompare},
			{"bad nested compare", n.Txn(ctx).Then(put, kvstore.OpTxn([]kvstore.Cmp{kvstore.Compare(kvstore.Value(a), "~", "")}, nil, nil)), kvstore.ErrInvalidCompare},
			{"If twice", n.Txn(ctx).If(aIs1).If(aIs1).Then(put), kvstore.ErrTxnOrder},
			{"If after Then", n.Txn(ctx).Then(put).If(aIs1), kvstore.ErrTxnOrder},
			{"Then after Else", n.Txn(ctx).Else(put).Then(put), kvstore.ErrTxnOrder},
			{"Else twice", n.Txn(ctx).Else(put).Else(put), kvstore.ErrTxnOrder},
			{"WithLease on OpGet", n.Txn(ctx).Then(put, kvstore.OpGet(a, kvstore.WithLease(1))), kvstore.ErrInvalidOpOption},
			{"WithPrevKV on OpGet", n.Txn(ctx).Then(put, kvstore.OpGet(a, kvstore.WithPrevKV())), kvstore.ErrInvalidOpOption},
			{"WithPrefix on OpPut", n.Txn(ctx).Then(kvstore.OpPut(k, nil, kvstore.WithPrefix())), kvstore.ErrInvalidOpOption},
			{"WithSerializable on OpPut", n.Txn(ctx).Then(kvstore.OpPut(k, nil, kvstore.WithSerializable())), kvstore.ErrInvalidOpOption},
			{"WithRev on OpDelete", n.Txn(ctx).Then(kvstore.OpDelete(a, kvstore.WithRev(1))), kvstore.ErrInvalidOpOption},
			{"WithIgnoreLease on OpDelete", n.Txn(ctx).Then(kvstore.OpDelete(a, kvstore.WithIgnoreLease())), kvstore.ErrInvalidOpOption},
			{"zero OpOption", n.Txn(ctx).Then(put, kvstore.OpGet(a, kvstore.OpOption{})), kvstore.ErrInvalidOpOption},
			{"WithPrefix and WithFromKey", n.Txn(ctx).Then(kvstore.OpDelete(a, kvstore.WithPrefix(), kvstore.WithFromKey())), kvstore.ErrInvalidOpOption},
			{"zero Op", n.Txn(ctx).Then(put, kvstore.Op{}), kvstore.ErrInvalidOp},
			{"nested zero Op", n.Txn(ctx).Then(put, kvstore.OpTxn(nil, nil, []kvstore.Op{{}})), kvstore.ErrInvalidOp},
			{"rule 8: empty key put", n.Txn(ctx).Then(kvstore.OpPut(nil, b("v"))), kvstore.ErrEmptyKey},
			{"rule 8: empty key compare", n.Txn(ctx).If(kvstore.Compare(kvstore.Value(nil), "=", "1")).Then(put), kvstore.ErrEmptyKey},
			{"rule 8: empty key get", n.Txn(ctx).Then(kvstore.OpGet(nil)), kvstore.ErrEmptyKey},
			{"rule 9: ignore-value with a value", n.Txn(ctx).Then(kvstore.OpPut(a, b("x"), kvstore.WithIgnoreValue())), kvstore.ErrValueProvided},
			{"rule 13: ignore-value on a missing key", n.Txn(ctx).Then(put, kvstore.OpPut(b("missing"), nil, kvstore.WithIgnoreValue())), kvstore.ErrKeyNotFound},
			{"rule 13: unknown lease", n.Txn(ctx).Then(put, kvstore.OpPut(b("l"), nil, kvstore.WithLease(7))), kvstore.ErrLeaseNotFound},
			{"rule 13: future read in a write txn", n.Txn(ctx).Then(put, kvstore.OpGet(a, kvstore.WithRev(99))), kvstore.ErrFutureRevision},
			{"rule 7: future read in a read txn", n.Txn(ctx).Then(kvstore.OpGet(a, kvstore.WithRev(3))), kvstore.ErrFutureRevision},
			{"bad sort", n.Txn(ctx).Then(kvstore.OpGet(a, kvstore.WithSort(9, 0))), kvstore.ErrInvalidSortOption},
			{"rule 15: two puts", n.Txn(ctx).Then(put, kvstore.OpPut(k, b("w"))), kvstore.ErrDuplicateKey},
			{"rule 15: put inside a from-key delete", n.Txn(ctx).Then(kvstore.OpDelete(a, kvstore.WithFromKey()), put), kvstore.ErrDuplicateKey},
			{"rule 15: sibling nested txns", n.Txn(ctx).Then(kvstore.OpTxn(nil, []kvstore.Op{put}, nil), kvstore.OpTxn(nil, []kvstore.Op{put}, nil)), kvstore.ErrDuplicateKey},
			{"rule 16: 129 ops", n.Txn(ctx).Then(many(129, putN)...), kvstore.ErrTooManyOps},
			{"rule 16: 129 compares, read-only", n.Txn(ctx).If(cmps129...), kvstore.ErrTooManyOps},
			{"rule 16: nested list over the reduced limit", n.Txn(ctx).Then(append(many(99, func(int) kvstore.Op { return kvstore.OpGet(a) }),
				kvstore.OpTxn(nil, many(29, putN), nil))...), kvstore.ErrTooManyOps},
			{"request too large", n.Txn(ctx).Then(kvstore.OpPut(k, make([]byte, kvstore.DefaultMaxRequestBytes))), kvstore.ErrRequestTooLarge},
		}
		for _, c := range cases {
			resp, err := c.txn.Commit()
			if !errors.Is(err, c.want) || resp != nil {
				t.Errorf("%s: %+v, %v; want %v", c.name, resp, err, c.want)
			}
			if rev, s := state(t, n); rev != 2 || s != "a=1 " {
				t.Fatalf("%s changed the store: revision %d, %s", c.name, rev, s)
			}
		}
		// Rule 13: checks cover only the branch that runs.
		resp, err := n.Txn(ctx).If(aIs1).Else(kvstore.OpPut(b("l"), nil, kvstore.WithLease(7))).Commit()
		if err != nil || !resp.Succeeded || resp.Header.Revision != 2 {
			t.Fatalf("bad op in the branch not run: %+v %v", resp, err)
		}
		// Rule 16: exactly the limit is fine.
		if _, err := n.Txn(ctx).Then(many(128, putN)...).Commit(); err != nil {
			t.Fatalf("128 ops: %v", err)
		}
	})
}

// WithMaxTxnOps sets the limit of rule 16.
func TestTxnMaxTxnOps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := openNode(t, kvstore.WithMaxTxnOps(2))
		ctx := context.Background()
		if _, err := n.Txn(ctx).Then(kvstore.OpPut(b("a"), nil), kvstore.OpPut(b("b"), nil)).Commit(); err != nil {
			t.Fatal(err)
		}
		ops := []kvstore.Op{kvstore.OpPut(b("c"), nil), kvstore.OpPut(b("d"), nil), kvstore.OpPut(b("e"), nil)}
		if _, err := n.Txn(ctx).Then(ops...).Commit(); !errors.Is(err, kvstore.ErrTooManyOps) {
			t.Fatalf("3 ops with limit 2: %v", err)
		}
		if rev, _ := state(t, n); rev != 2 {
			t.Fatalf("revision %d", rev)
		}
	})
}

// Commit runs the txn anew each time; a closed node refuses it.
func TestTxnCommitAgainAndClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := openNode(t)
		txn := n.Txn(context.Background()).Then(kvstore.OpPut(b("a"), b("x")))
		for want := int64(2); want <= 3; want++ {
			resp, err := txn.Commit()
			if err != nil || resp.Header.Revision != want {
				t.Fatalf("commit: %+v %v, want revision %d", resp, err, want)
			}
		}
		read := n.Txn(context.Background()).Then(kvstore.OpGet(b("a"), kvstore.WithSerializable()))
		n.Close()
		for _, txn := range []*kvstore.Txn{txn, read} {
			if _, err := txn.Commit(); !errors.Is(err, kvstore.ErrClosed) {
				t.Fatalf("after close: %v", err)
			}
		}
	})
}

// openNode opens a one-node in-memory cluster with extra options, waits
// until it leads, and closes it at cleanup. Call it inside a synctest bubble.
func openNode(t *testing.T, opts ...kvstore.Option) *kvstore.Node {
	t.Helper()
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
		kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}))
	n, err := kvstore.Open("", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return leaderOf(t, []*kvstore.Node{n})
}

// TestTxnNestingDepth pins SEMANTICS.md rule 16's kvstore note: txns nest
// at most 64 deep. One op per level passes the shrinking op limit, so
// without the depth check a 65-deep txn was committed to every member's log
// and only then rejected at apply as a bad command. It must be refused
// before proposing, as too-many-ops, with nothing written to the log.
func TestTxnNestingDepth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := openNode(t)
		nested := func(depth int, inner kvstore.Op) *kvstore.Txn {
			op := inner
			for range depth - 1 {
				op = kvstore.OpTxn(nil, []kvstore.Op{op}, nil)
			}
			return n.Txn(context.Background()).Then(op)
		}
		if _, err := nested(64, kvstore.OpPut([]byte("deep"), []byte("v"))).Commit(); err != nil {
			t.Fatalf("64 deep: %v", err)
		}
		before := n.Status()
		for _, inner := range []kvstore.Op{kvstore.OpPut([]byte("deep"), []byte("w")), kvstore.OpGet([]byte("deep"))} {
			_, err := nested(65, inner).Commit()
			if !errors.Is(err, kvstore.ErrTooManyOps) {
				t.Fatalf("65 deep: %v, want ErrTooManyOps", err)
			}
		}
		after := n.Status()
		if after.CommitIndex != before.CommitIndex || after.Revision != before.Revision {
			t.Fatalf("a refused txn reached the log: commit index %d -> %d, revision %d -> %d",
				before.CommitIndex, after.CommitIndex, before.Revision, after.Revision)
		}
	})
}
