package mvcc_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

func cmp(key string, target mvcc.CompareTarget, result mvcc.CompareResult, operand any) mvcc.Compare {
	c := mvcc.Compare{Key: b(key), Target: target, Result: result}
	switch v := operand.(type) {
	case string:
		c.Value = b(v)
	case int:
		c.Number = int64(v)
	}
	return c
}

func opPut(k, v string) mvcc.Op { return mvcc.Op{Put: &mvcc.PutRequest{Key: b(k), Value: b(v)}} }
func opGet(k string) mvcc.Op    { return mvcc.Op{Range: &mvcc.RangeRequest{Key: b(k)}} }
func opDel(k, end string) mvcc.Op {
	return mvcc.Op{Delete: &mvcc.DeleteRequest{Key: b(k), End: b(end)}}
}
func opTxn(t mvcc.TxnRequest) mvcc.Op {
	return mvcc.Op{Txn: &t}
}

// Rule 11: compares on missing keys and ranges.
func TestCompareRule11(t *testing.T) {
	s := newStore(t)
	put(t, s, "a", "1") // 2, lease 0
	put(t, s, "b", "2") // 3
	put(t, s, "b", "3") // 4
	cases := []struct {
		name string
		c    mvcc.Compare
		want bool
	}{
		{"value equal", cmp("a", mvcc.CompareValue, mvcc.CompareEqual, "1"), true},
		{"value greater", cmp("a", mvcc.CompareValue, mvcc.CompareGreater, "0"), true},
		{"value less", cmp("a", mvcc.CompareValue, mvcc.CompareLess, "0"), false},
		{"value not equal", cmp("a", mvcc.CompareValue, mvcc.CompareNotEqual, "1"), false},
		{"missing key: value equal empty is false", cmp("x", mvcc.CompareValue, mvcc.CompareEqual, ""), false},
		{"missing key: value not-equal is false", cmp("x", mvcc.CompareValue, mvcc.CompareNotEqual, "zz"), false},
		{"missing key: version == 0", cmp("x", mvcc.CompareVersion, mvcc.CompareEqual, 0), true},
		{"missing key: create == 0", cmp("x", mvcc.CompareCreate, mvcc.CompareEqual, 0), true},
		{"missing key: mod < 1", cmp("x", mvcc.CompareMod, mvcc.CompareLess, 1), true},
		{"missing key: lease == 0", cmp("x", mvcc.CompareLease, mvcc.CompareEqual, 0), true},
		{"version", cmp("b", mvcc.CompareVersion, mvcc.CompareEqual, 2), true},
		{"create", cmp("b", mvcc.CompareCreate, mvcc.CompareEqual, 3), true},
		{"mod", cmp("b", mvcc.CompareMod, mvcc.CompareGreater, 3), true},
		{"lease", cmp("b", mvcc.CompareLease, mvcc.CompareNotEqual, 0), false},
	}
	ranged := func(c mvcc.Compare, end string) mvcc.Compare { c.End = b(end); return c }
	cases = append(cases,
		struct {
			name string
			c    mvcc.Compare
			want bool
		}{"range: every key must hold", ranged(cmp("a", mvcc.CompareVersion, mvcc.CompareEqual, 1), "c"), false},
		struct {
			name string
			c    mvcc.Compare
			want bool
		}{"range: all hold", ranged(cmp("a", mvcc.CompareMod, mvcc.CompareGreater, 1), "\x00"), true},
		struct {
			name string
			c    mvcc.Compare
			want bool
		}{"empty range: value false", ranged(cmp("c", mvcc.CompareValue, mvcc.CompareNotEqual, "x"), "d"), false},
		struct {
			name string
			c    mvcc.Compare
			want bool
		}{"empty range: version zero", ranged(cmp("c", mvcc.CompareVersion, mvcc.CompareEqual, 0), "d"), true},
		struct {
			name string
			c    mvcc.Compare
			want bool
		}{"range with end before key is empty", ranged(cmp("b", mvcc.CompareVersion, mvcc.CompareEqual, 0), "a"), true},
	)
	for _, c := range cases {
		res, _, err := s.Txn(&mvcc.TxnRequest{Compares: []mvcc.Compare{c.c}})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Succeeded != c.want {
			t.Errorf("%s: succeeded %v, want %v", c.name, res.Succeeded, c.want)
		}
	}
}

// Rules 12 and 14: compares see the store before the txn, reads inside see
// earlier writes, headers report the revision as of that point, a nested txn
// reports 0.
func TestTxnReadsAndHeadersRule12And14(t *testing.T) {
	s := newStore(t)
	put(t, s, "a", "old")  // 2
	put(t, s, "c", "gone") // 3
	res, events, err := s.Txn(&mvcc.TxnRequest{
		Compares: []mvcc.Compare{cmp("a", mvcc.CompareValue, mvcc.CompareEqual, "old")},
		Then: []mvcc.Op{
			opGet("a"),
			opPut("a", "new"),
			opGet("a"),
			opTxn(mvcc.TxnRequest{
				// Evaluated before the txn ran: "a" was still "old".
				Compares: []mvcc.Compare{cmp("a", mvcc.CompareValue, mvcc.CompareEqual, "old")},
				Then:     []mvcc.Op{opPut("b", "nested"), opGet("b")},
			}),
			{Range: &mvcc.RangeRequest{Key: b("a"), Revision: 3}},
			opDel("c", ""),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded || res.Revision != 4 || s.Revision() != 4 {
		t.Fatalf("txn %+v, store at %d", res, s.Revision())
	}
	r := res.Results
	if r[0].Range.Revision != 3 || string(r[0].Range.KVs[0].Value) != "old" {
		t.Errorf("read before write: %+v", r[0].Range)
	}
	if r[1].Put.Revision != 4 {
		t.Errorf("put header %d", r[1].Put.Revision)
	}
	if r[2].Range.Revision != 4 || string(r[2].Range.KVs[0].Value) != "new" {
		t.Errorf("read after write: %+v", r[2].Range)
	}
	nested := r[3].Txn
	if !nested.Succeeded || nested.Revision != 0 || string(nested.Results[1].Range.KVs[0].Value) != "nested" {
		t.Errorf("nested: %+v", nested)
	}
	if string(r[4].Range.KVs[0].Value) != "old" {
		t.Errorf("read at old revision inside txn: %+v", r[4].Range)
	}
	if r[5].Delete.Deleted != 1 || r[5].Delete.Revision != 4 {
		t.Errorf("delete: %+v", r[5].Delete)
	}
	// Events in op order, one revision, sub-revisions in order.
	var got []string
	for i, ev := range events {
		if ev.KV.ModRevision != 4 || ev.Sub != int64(i) {
			t.Errorf("event %d: %+v", i, ev)
		}
		got = append(got, ev.Type.String()+" "+string(ev.KV.Key))
	}
	if want := []string{"PUT a", "PUT b", "DELETE c"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if events[0].PrevKV == nil || string(events[0].PrevKV.Value) != "old" || events[1].PrevKV != nil {
		t.Fatalf("prev kvs: %+v %+v", events[0].PrevKV, events[1].PrevKV)
	}
	// A txn that changes nothing reports the current revision.
	res, _, err = s.Txn(&mvcc.TxnRequest{Then: []mvcc.Op{opGet("a")}})
	if err != nil || res.Revision != 4 || s.Revision() != 4 {
		t.Fatalf("read-only txn %+v %v", res, err)
	}
}

// Rule 13: apply-time checks cover only the branch that runs, against the
// store before the txn; one failure fails the whole txn.
func TestTxnBranchChecksRule13(t *testing.T) {
	s := newStore(t)
	put(t, s, "a", "1") // 2
	bad := []mvcc.Op{{Put: &mvcc.PutRequest{Key: b("x"), IgnoreValue: true}}}
	// The failing op is on the branch not taken: fine.
	res, _, err := s.Txn(&mvcc.TxnRequest{
		Compares: []mvcc.Compare{cmp("a", mvcc.CompareVersion, mvcc.CompareEqual, 1)},
		Then:     []mvcc.Op{opPut("b", "1")},
		Else:     bad,
	})
	if err != nil || !res.Succeeded {
		t.Fatalf("%+v %v", res, err)
	}
	cases := []struct {
		name string
		ops  []mvcc.Op
		want error
	}{
		{"ignore value on missing key", append([]mvcc.Op{opPut("c", "1")}, bad...), mvcc.ErrKeyNotFound},
		{"unknown lease", []mvcc.Op{opPut("c", "1"), {Put: &mvcc.PutRequest{Key: b("d"), Lease: 7}}}, mvcc.ErrLeaseNotFound},
		{"future read", []mvcc.Op{opPut("c", "1"), {Range: &mvcc.RangeRequest{Key: b("a"), Revision: 4}}}, mvcc.ErrFutureRevision},
		{"nested failure", []mvcc.Op{opPut("c", "1"), opTxn(mvcc.TxnRequest{Then: bad})}, mvcc.ErrKeyNotFound},
		// The put of "a" comes first, but ignore-value checks the store
		// before the txn, where "e" is missing.
		{"key created earlier in the txn does not count", []mvcc.Op{opPut("e", "1"), {Range: &mvcc.RangeRequest{Key: b("a")}}, opTxn(mvcc.TxnRequest{Then: []mvcc.Op{{Put: &mvcc.PutRequest{Key: b("f"), IgnoreLease: true}}}})}, mvcc.ErrKeyNotFound},
	}
	for _, c := range cases {
		before := s.Revision()
		hash, _ := s.Hash(0)
		_, events, err := s.Txn(&mvcc.TxnRequest{Then: c.ops})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
		after, _ := s.Hash(0)
		if s.Revision() != before || hash != after || events != nil {
			t.Errorf("%s: failed txn changed the store", c.name)
		}
	}
}

// Rule 15: duplicate writes along one path.
func TestTxnDuplicateKeysRule15(t *testing.T) {
	nested := func(then, els []mvcc.Op) mvcc.Op { return opTxn(mvcc.TxnRequest{Then: then, Else: els}) }
	cases := []struct {
		name string
		txn  mvcc.TxnRequest
		dup  bool
	}{
		{"two puts", mvcc.TxnRequest{Then: []mvcc.Op{opPut("a", "1"), opPut("a", "2")}}, true},
		{"put then delete", mvcc.TxnRequest{Then: []mvcc.Op{opPut("a", "1"), opDel("a", "")}}, true},
		{"delete then put", mvcc.TxnRequest{Then: []mvcc.Op{opDel("a", "b"), opPut("a", "1")}}, true},
		{"put inside from-key delete (etcd#22445)", mvcc.TxnRequest{Then: []mvcc.Op{opDel("a", "\x00"), opPut("zzz", "1")}}, true},
		{"put inside all-keys delete", mvcc.TxnRequest{Then: []mvcc.Op{opPut("k", "1"), opDel("\x00", "\x00")}}, true},
		{"put next to delete range", mvcc.TxnRequest{Then: []mvcc.Op{opDel("a", "b"), opPut("b", "1")}}, false},
		{"overlapping deletes", mvcc.TxnRequest{Then: []mvcc.Op{opDel("a", "c"), opDel("b", "d"), opDel("a", "\x00")}}, false},
		{"then and else are separate", mvcc.TxnRequest{Then: []mvcc.Op{opPut("a", "1")}, Else: []mvcc.Op{opPut("a", "2")}}, false},
		{"nested branches are separate", mvcc.TxnRequest{Then: []mvcc.Op{nested([]mvcc.Op{opPut("a", "1")}, []mvcc.Op{opPut("a", "2")})}}, false},
		{"nested put vs outer put", mvcc.TxnRequest{Then: []mvcc.Op{opPut("a", "1"), nested(nil, []mvcc.Op{opPut("a", "2")})}}, true},
		{"outer delete vs nested put", mvcc.TxnRequest{Then: []mvcc.Op{nested([]mvcc.Op{opPut("a", "1")}, nil), opDel("a", "\x00")}}, true},
		{"sibling nested txns (etcd#16380)", mvcc.TxnRequest{Then: []mvcc.Op{nested([]mvcc.Op{opPut("a", "1")}, nil), nested(nil, []mvcc.Op{opPut("a", "2")})}}, true},
		{"sibling nested put vs delete", mvcc.TxnRequest{Then: []mvcc.Op{nested([]mvcc.Op{opDel("a", "\x00")}, nil), nested([]mvcc.Op{opPut("b", "2")}, nil)}}, true},
		{"deeply nested", mvcc.TxnRequest{Then: []mvcc.Op{nested([]mvcc.Op{nested([]mvcc.Op{opPut("a", "1")}, nil)}, nil), opPut("a", "2")}}, true},
		{"reads never conflict", mvcc.TxnRequest{Then: []mvcc.Op{opPut("a", "1"), opGet("a"), nested([]mvcc.Op{opGet("a")}, nil)}}, false},
	}
	for _, c := range cases {
		s := newStore(t)
		_, _, err := s.Txn(&c.txn)
		if c.dup != errors.Is(err, mvcc.ErrDuplicateKey) {
			t.Errorf("%s: error %v, duplicate expected %v", c.name, err, c.dup)
		}
		if c.dup && s.Revision() != 1 {
			t.Errorf("%s: rejected txn changed the store", c.name)
		}
	}
}

// Rule 16: list limits, nested limits reduced by the parent's longest list,
// and etcd's validation order.
func TestTxnTooManyOpsRule16(t *testing.T) {
	s := mvcc.New(mvcc.Config{MaxTxnOps: 4})
	t.Cleanup(func() { s.Close() })
	puts := func(n int, prefix string) []mvcc.Op {
		ops := make([]mvcc.Op, n)
		for i := range ops {
			ops[i] = opPut(prefix+strings.Repeat("x", i+1), "v")
		}
		return ops
	}
	cases := []struct {
		name string
		txn  mvcc.TxnRequest
		want error
	}{
		{"exactly the limit", mvcc.TxnRequest{Then: puts(4, "a")}, nil},
		{"then over", mvcc.TxnRequest{Then: puts(5, "a")}, mvcc.ErrTooManyOps},
		{"else over", mvcc.TxnRequest{Else: puts(5, "a")}, mvcc.ErrTooManyOps},
		{"compares over", mvcc.TxnRequest{Compares: make([]mvcc.Compare, 5)}, mvcc.ErrTooManyOps},
		{"nested within limit minus parent", mvcc.TxnRequest{Then: []mvcc.Op{opPut("p", "v"), opTxn(mvcc.TxnRequest{Then: puts(2, "n")})}}, nil},
		{"nested over limit minus parent", mvcc.TxnRequest{Then: []mvcc.Op{opPut("p", "v"), opTxn(mvcc.TxnRequest{Then: puts(3, "n")})}}, mvcc.ErrTooManyOps},
		{"limit before empty key", mvcc.TxnRequest{Compares: []mvcc.Compare{{}}, Then: puts(5, "a")}, mvcc.ErrTooManyOps},
		{"empty compare key", mvcc.TxnRequest{Compares: []mvcc.Compare{{}}}, mvcc.ErrEmptyKey},
		{"ops validated in order", mvcc.TxnRequest{Then: []mvcc.Op{{Put: &mvcc.PutRequest{Key: b("k"), Value: b("v"), IgnoreValue: true}}, opPut("", "")}}, mvcc.ErrValueProvided},
		{"validation before duplicates", mvcc.TxnRequest{Then: []mvcc.Op{opPut("a", "1"), opPut("a", "2"), opGet("")}}, mvcc.ErrEmptyKey},
		{"empty op", mvcc.TxnRequest{Then: []mvcc.Op{{}}}, mvcc.ErrInvalidOp},
	}
	for _, c := range cases {
		_, _, err := s.Txn(&c.txn)
		if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

// ReadTxn answers a txn without writes exactly as Txn does and refuses one
// with writes at any depth, changing nothing either way.
func TestReadTxn(t *testing.T) {
	s := mvcc.New(mvcc.Config{})
	defer s.Close()
	for _, k := range []string{"a", "b"} {
		if _, _, err := s.Put(&mvcc.PutRequest{Key: []byte(k), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	read := &mvcc.TxnRequest{
		Compares: []mvcc.Compare{{Key: []byte("a"), Target: mvcc.CompareValue, Result: mvcc.CompareEqual, Value: []byte("v")}},
		Then: []mvcc.Op{{Range: &mvcc.RangeRequest{Key: []byte("a"), End: []byte("c")}},
			{Txn: &mvcc.TxnRequest{Else: []mvcc.Op{{Range: &mvcc.RangeRequest{Key: []byte("b"), Revision: 2}}}}}},
	}
	got, err := s.ReadTxn(read)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := s.Txn(read)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || s.Revision() != 3 {
		t.Fatalf("ReadTxn %+v, Txn %+v, revision %d", got, want, s.Revision())
	}
	nestedWrite := &mvcc.TxnRequest{Then: []mvcc.Op{{Txn: &mvcc.TxnRequest{Else: []mvcc.Op{{Delete: &mvcc.DeleteRequest{Key: []byte("a")}}}}}}}
	if _, err := s.ReadTxn(nestedWrite); !errors.Is(err, mvcc.ErrInvalidOp) {
		t.Fatalf("ReadTxn with a nested delete: %v", err)
	}
	if _, err := s.ReadTxn(&mvcc.TxnRequest{Then: []mvcc.Op{{Range: &mvcc.RangeRequest{Key: []byte("a"), Revision: 9}}}}); !errors.Is(err, mvcc.ErrFutureRevision) {
		t.Fatalf("ReadTxn at a future revision: %v", err)
	}
	if s.Revision() != 3 {
		t.Fatalf("revision moved to %d", s.Revision())
	}
}
