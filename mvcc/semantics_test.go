package mvcc_test

// Table tests of etcd v3's semantics. Rule numbers refer to SEMANTICS.md at
// the repository root. Where a rule applies both to plain ops and to ops
// inside a txn, the body runs through both paths (see paths).

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// path runs single ops either directly or wrapped in a one-op Txn.
type path struct {
	name   string
	put    func(*mvcc.Store, *mvcc.PutRequest) (*mvcc.PutResult, error)
	del    func(*mvcc.Store, *mvcc.DeleteRequest) (*mvcc.DeleteResult, error)
	rangeF func(*mvcc.Store, *mvcc.RangeRequest) (*mvcc.RangeResult, error)
}

var paths = []path{
	{
		name: "plain",
		put: func(s *mvcc.Store, r *mvcc.PutRequest) (*mvcc.PutResult, error) {
			res, _, err := s.Put(r)
			return res, err
		},
		del: func(s *mvcc.Store, r *mvcc.DeleteRequest) (*mvcc.DeleteResult, error) {
			res, _, err := s.DeleteRange(r)
			return res, err
		},
		rangeF: (*mvcc.Store).Range,
	},
	{
		name: "txn",
		put: func(s *mvcc.Store, r *mvcc.PutRequest) (*mvcc.PutResult, error) {
			res, err := txnOne(s, mvcc.Op{Put: r})
			if err != nil {
				return nil, err
			}
			return res.Put, nil
		},
		del: func(s *mvcc.Store, r *mvcc.DeleteRequest) (*mvcc.DeleteResult, error) {
			res, err := txnOne(s, mvcc.Op{Delete: r})
			if err != nil {
				return nil, err
			}
			return res.Delete, nil
		},
		rangeF: func(s *mvcc.Store, r *mvcc.RangeRequest) (*mvcc.RangeResult, error) {
			res, err := txnOne(s, mvcc.Op{Range: r})
			if err != nil {
				return nil, err
			}
			return res.Range, nil
		},
	},
}

func txnOne(s *mvcc.Store, op mvcc.Op) (mvcc.OpResult, error) {
	res, _, err := s.Txn(&mvcc.TxnRequest{Then: []mvcc.Op{op}})
	if err != nil {
		return mvcc.OpResult{}, err
	}
	if !res.Succeeded || len(res.Results) != 1 {
		return mvcc.OpResult{}, fmt.Errorf("txn result %+v", res)
	}
	return res.Results[0], nil
}

func forEachPath(t *testing.T, body func(t *testing.T, p path)) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) { body(t, p) })
	}
}

func b(s string) []byte { return []byte(s) }

func TestRevisionsAndVersions(t *testing.T) {
	forEachPath(t, func(t *testing.T, p path) {
		s := newStore(t)
		if s.Revision() != 1 {
			t.Fatalf("empty store at revision %d, want 1", s.Revision())
		}
		mustPut := func(k, v string) *mvcc.PutResult {
			res, err := p.put(s, &mvcc.PutRequest{Key: b(k), Value: b(v), PrevKV: true})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		if r := mustPut("a", "1"); r.Revision != 2 || r.PrevKV != nil {
			t.Fatalf("first put: %+v", r)
		}
		if r := mustPut("a", "2"); r.Revision != 3 || r.PrevKV == nil || string(r.PrevKV.Value) != "1" {
			t.Fatalf("second put: %+v", r)
		}
		kv := get(t, s, mvcc.RangeRequest{Key: b("a")}).KVs[0]
		if kv.CreateRevision != 2 || kv.ModRevision != 3 || kv.Version != 2 {
			t.Fatalf("kv %+v", kv)
		}
		// Deleting a missing key changes nothing, not even the revision.
		d, err := p.del(s, &mvcc.DeleteRequest{Key: b("missing")})
		if err != nil || d.Deleted != 0 || d.Revision != 3 || s.Revision() != 3 {
			t.Fatalf("delete missing: %+v %v rev %d", d, err, s.Revision())
		}
		d, err = p.del(s, &mvcc.DeleteRequest{Key: b("a"), PrevKV: true})
		if err != nil || d.Deleted != 1 || d.Revision != 4 || len(d.PrevKVs) != 1 || d.PrevKVs[0].Version != 2 {
			t.Fatalf("delete: %+v %v", d, err)
		}
		// A re-created key starts a new generation.
		mustPut("a", "3")
		kv = get(t, s, mvcc.RangeRequest{Key: b("a")}).KVs[0]
		if kv.CreateRevision != 5 || kv.ModRevision != 5 || kv.Version != 1 {
			t.Fatalf("re-created kv %+v", kv)
		}
		// The old generation is still readable at its revisions.
		old := get(t, s, mvcc.RangeRequest{Key: b("a"), Revision: 3}).KVs
		if len(old) != 1 || string(old[0].Value) != "2" {
			t.Fatalf("read at 3: %+v", old)
		}
		if n := get(t, s, mvcc.RangeRequest{Key: b("a"), Revision: 4}).Count; n != 0 {
			t.Fatalf("read at 4 (deleted): count %d", n)
		}
	})
}

// Rule 9: request validation first, then an unknown lease, then
// ignore-value/ignore-lease on a missing key.
func TestPutValidationOrderRule9(t *testing.T) {
	forEachPath(t, func(t *testing.T, p path) {
		s := newStore(t)
		cases := []struct {
			name string
			req  mvcc.PutRequest
			want error
		}{
			{"empty key", mvcc.PutRequest{Value: b("v")}, mvcc.ErrEmptyKey},
			{"ignore value with value", mvcc.PutRequest{Key: b("k"), Value: b("v"), IgnoreValue: true, Lease: 99}, mvcc.ErrValueProvided},
			{"ignore lease with lease", mvcc.PutRequest{Key: b("k"), IgnoreLease: true, Lease: 99}, mvcc.ErrLeaseProvided},
			{"unknown lease before missing key", mvcc.PutRequest{Key: b("k"), IgnoreValue: true, Lease: 99}, mvcc.ErrLeaseNotFound},
			{"ignore value on missing key", mvcc.PutRequest{Key: b("k"), IgnoreValue: true}, mvcc.ErrKeyNotFound},
			{"ignore lease on missing key", mvcc.PutRequest{Key: b("k"), IgnoreLease: true}, mvcc.ErrKeyNotFound},
		}
		for _, c := range cases {
			_, err := p.put(s, &c.req)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			}
		}
		if s.Revision() != 1 {
			t.Fatalf("rejected puts changed the revision to %d", s.Revision())
		}
	})
}

// Rule 10: ignore-lease keeps the lease, ignore-value keeps the value, and a
// plain put detaches the key from its lease.
func TestPutIgnoreOptionsRule10(t *testing.T) {
	forEachPath(t, func(t *testing.T, p path) {
		s := newStore(t)
		mustPut := func(r mvcc.PutRequest) {
			t.Helper()
			if _, err := p.put(s, &r); err != nil {
				t.Fatal(err)
			}
		}
		current := func() mvcc.KeyValue { return get(t, s, mvcc.RangeRequest{Key: b("k")}).KVs[0] }
		mustPut(mvcc.PutRequest{Key: b("k"), Value: b("v1"), Lease: 1})
		mustPut(mvcc.PutRequest{Key: b("k"), Value: b("v2"), IgnoreLease: true})
		if kv := current(); kv.Lease != 1 || string(kv.Value) != "v2" {
			t.Fatalf("ignore lease: %+v", kv)
		}
		mustPut(mvcc.PutRequest{Key: b("k"), IgnoreValue: true, Lease: 2})
		if kv := current(); kv.Lease != 2 || string(kv.Value) != "v2" || kv.Version != 3 {
			t.Fatalf("ignore value: %+v", kv)
		}
		mustPut(mvcc.PutRequest{Key: b("k"), Value: b("v3")})
		if kv := current(); kv.Lease != 0 {
			t.Fatalf("plain put kept lease %d", kv.Lease)
		}
	})
}

func TestDeleteRangeForms(t *testing.T) {
	forEachPath(t, func(t *testing.T, p path) {
		cases := []struct {
			name     string
			key, end string
			want     []string
		}{
			{"single", "b", "", []string{"b"}},
			{"range", "b", "c", []string{"b", "b/1", "b/2"}},
			{"prefix", "b/", string(mvcc.PrefixEnd(b("b/"))), []string{"b/1", "b/2"}},
			{"from key", "b/2", "\x00", []string{"b/2", "c", "d"}},
			{"all", "\x00", "\x00", []string{"a", "b", "b/1", "b/2", "c", "d"}},
			{"end before key is empty (rule 8)", "c", "b", nil},
			{"end equal to key is empty (rule 8)", "c", "c", nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := newStore(t)
				for _, k := range []string{"d", "b/2", "a", "b", "c", "b/1"} {
					put(t, s, k, "v")
				}
				rev := s.Revision()
				d, err := p.del(s, &mvcc.DeleteRequest{Key: b(c.key), End: b(c.end), PrevKV: true})
				if err != nil {
					t.Fatal(err)
				}
				if got := keysOf(d.PrevKVs); !slices.Equal(got, c.want) || d.Deleted != int64(len(c.want)) {
					t.Fatalf("deleted %v (%d), want %v", got, d.Deleted, c.want)
				}
				wantRev := rev
				if len(c.want) > 0 {
					wantRev++
				}
				if s.Revision() != wantRev || d.Revision != wantRev {
					t.Fatalf("revision %d (result %d), want %d", s.Revision(), d.Revision, wantRev)
				}
			})
		}
		s := newStore(t)
		_, err := p.del(s, &mvcc.DeleteRequest{})
		wantErr(t, err, mvcc.ErrEmptyKey)
	})
}

// rangeFixture holds keys a..e written so that versions, create and mod
// revisions and values all order differently from keys.
func rangeFixture(t *testing.T) *mvcc.Store {
	s := newStore(t)
	put(t, s, "c", "3")  // rev 2
	put(t, s, "a", "5")  // rev 3
	put(t, s, "e", "1")  // rev 4
	put(t, s, "b", "4")  // rev 5
	put(t, s, "d", "2")  // rev 6
	put(t, s, "c", "33") // rev 7, c version 2
	put(t, s, "a", "55") // rev 8, a version 2
	put(t, s, "c", "0")  // rev 9, c version 3
	return s
}

func TestRangeRules(t *testing.T) {
	all := func(r mvcc.RangeRequest) mvcc.RangeRequest {
		r.Key, r.End = b("a"), b("\x00")
		return r
	}
	cases := []struct {
		name      string
		req       mvcc.RangeRequest
		keys      []string
		count     int64
		more      bool
		keysOnly  bool
		wantError error
	}{
		{"single key", mvcc.RangeRequest{Key: b("b")}, []string{"b"}, 1, false, false, nil},
		{"missing key", mvcc.RangeRequest{Key: b("x")}, nil, 0, false, false, nil},
		{"interval", mvcc.RangeRequest{Key: b("b"), End: b("d")}, []string{"b", "c"}, 2, false, false, nil},
		{"from key", mvcc.RangeRequest{Key: b("c"), End: b("\x00")}, []string{"c", "d", "e"}, 3, false, false, nil},
		{"all keys", mvcc.RangeRequest{Key: b("\x00"), End: b("\x00")}, []string{"a", "b", "c", "d", "e"}, 5, false, false, nil},
		{"rule 8: end before key", mvcc.RangeRequest{Key: b("d"), End: b("b")}, nil, 0, false, false, nil},
		{"rule 8: empty key", mvcc.RangeRequest{End: b("b")}, nil, 0, false, false, mvcc.ErrEmptyKey},
		{"rule 2/3: limit", all(mvcc.RangeRequest{Limit: 2}), []string{"a", "b"}, 5, true, false, nil},
		{"rule 3: limit equal to matches", all(mvcc.RangeRequest{Limit: 5}), []string{"a", "b", "c", "d", "e"}, 5, false, false, nil},
		{"rule 5: negative limit is none", all(mvcc.RangeRequest{Limit: -1}), []string{"a", "b", "c", "d", "e"}, 5, false, false, nil},
		{"rule 2: count before filters", all(mvcc.RangeRequest{MinModRevision: 7}), []string{"a", "c"}, 5, false, false, nil},
		{"rule 3: more after filters", all(mvcc.RangeRequest{MinModRevision: 6, Limit: 2}), []string{"a", "c"}, 5, true, false, nil},
		{"rule 3: count exceeds limit, more false", all(mvcc.RangeRequest{MaxModRevision: 4, Limit: 2}), []string{"e"}, 5, false, false, nil},
		{"max mod", all(mvcc.RangeRequest{MaxModRevision: 5}), []string{"b", "e"}, 5, false, false, nil},
		{"min create", all(mvcc.RangeRequest{MinCreateRevision: 4}), []string{"b", "d", "e"}, 5, false, false, nil},
		{"max create", all(mvcc.RangeRequest{MaxCreateRevision: 3}), []string{"a", "c"}, 5, false, false, nil},
		{"rule 4: count only", all(mvcc.RangeRequest{CountOnly: true, Limit: 1}), nil, 5, false, false, nil},
		{"rule 4: keys only", all(mvcc.RangeRequest{KeysOnly: true, Limit: 1}), []string{"a"}, 5, true, true, nil},
		{"rule 6: key descend", all(mvcc.RangeRequest{SortTarget: mvcc.SortByKey, SortOrder: mvcc.SortDescend}), []string{"e", "d", "c", "b", "a"}, 5, false, false, nil},
		{"rule 6: key descend + limit gives highest keys", all(mvcc.RangeRequest{SortOrder: mvcc.SortDescend, Limit: 2}), []string{"e", "d"}, 5, true, false, nil},
		{"rule 6: non-key target with order none sorts ascending", all(mvcc.RangeRequest{SortTarget: mvcc.SortByValue}), []string{"c", "e", "d", "b", "a"}, 5, false, false, nil},
		{"rule 6: value descend", all(mvcc.RangeRequest{SortTarget: mvcc.SortByValue, SortOrder: mvcc.SortDescend}), []string{"a", "b", "d", "e", "c"}, 5, false, false, nil},
		{"rule 6: version ties broken by key", all(mvcc.RangeRequest{SortTarget: mvcc.SortByVersion, SortOrder: mvcc.SortAscend}), []string{"b", "d", "e", "a", "c"}, 5, false, false, nil},
		{"rule 6: version descend ties by key", all(mvcc.RangeRequest{SortTarget: mvcc.SortByVersion, SortOrder: mvcc.SortDescend}), []string{"c", "a", "b", "d", "e"}, 5, false, false, nil},
		{"create ascend", all(mvcc.RangeRequest{SortTarget: mvcc.SortByCreateRevision}), []string{"c", "a", "e", "b", "d"}, 5, false, false, nil},
		{"mod descend", all(mvcc.RangeRequest{SortTarget: mvcc.SortByModRevision, SortOrder: mvcc.SortDescend}), []string{"c", "a", "d", "b", "e"}, 5, false, false, nil},
		{"rule 5: limit after sort", all(mvcc.RangeRequest{SortTarget: mvcc.SortByModRevision, SortOrder: mvcc.SortDescend, Limit: 2}), []string{"c", "a"}, 5, true, false, nil},
		{"invalid sort order", all(mvcc.RangeRequest{SortOrder: 9}), nil, 0, false, false, mvcc.ErrInvalidSortOption},
		{"invalid sort target", all(mvcc.RangeRequest{SortTarget: 9}), nil, 0, false, false, mvcc.ErrInvalidSortOption},
	}
	forEachPath(t, func(t *testing.T, p path) {
		s := rangeFixture(t)
		for _, c := range cases {
			res, err := p.rangeF(s, &c.req)
			if c.wantError != nil {
				if !errors.Is(err, c.wantError) {
					t.Errorf("%s: error %v, want %v", c.name, err, c.wantError)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if got := keysOf(res.KVs); !slices.Equal(got, c.keys) || res.Count != c.count || res.More != c.more {
				t.Errorf("%s: keys %v count %d more %v, want %v %d %v", c.name, got, res.Count, res.More, c.keys, c.count, c.more)
			}
			if res.Revision != 9 {
				t.Errorf("%s: header revision %d, want 9", c.name, res.Revision)
			}
			for _, kv := range res.KVs {
				if (kv.Value == nil) != c.keysOnly {
					t.Errorf("%s: value %q with keys only %v", c.name, kv.Value, c.keysOnly)
				}
				if kv.Version == 0 || kv.CreateRevision == 0 {
					t.Errorf("%s: keys only dropped more than the value: %+v", c.name, kv)
				}
			}
		}
	})
}

// Rule 1 and 7: reads at past revisions report the current revision; 0 and
// negative read current; the compact revision is readable, below it is
// compacted, above current is future.
func TestRangeRevisionsRule1And7(t *testing.T) {
	forEachPath(t, func(t *testing.T, p path) {
		s := newStore(t)
		for i := range 5 {
			put(t, s, "k", fmt.Sprint(i)) // revisions 2..6
		}
		if _, err := s.Compact(4); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			rev   int64
			value string
			err   error
		}{
			{0, "4", nil}, {-1, "4", nil}, {-100, "4", nil}, {6, "4", nil}, {5, "3", nil},
			{4, "2", nil}, {3, "", mvcc.ErrCompacted}, {1, "", mvcc.ErrCompacted},
			{7, "", mvcc.ErrFutureRevision}, {100, "", mvcc.ErrFutureRevision},
		}
		for _, c := range cases {
			res, err := p.rangeF(s, &mvcc.RangeRequest{Key: b("k"), Revision: c.rev})
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Errorf("rev %d: error %v, want %v", c.rev, err, c.err)
				}
				continue
			}
			if err != nil || string(res.KVs[0].Value) != c.value || res.Revision != 6 {
				t.Errorf("rev %d: %+v %v, want value %q at header 6", c.rev, res, err, c.value)
			}
		}
	})
}

// Rule 17: compaction edges.
func TestCompactRule17(t *testing.T) {
	s := newStore(t)
	if _, err := s.Compact(0); err != nil {
		t.Fatalf("Compact(0) on a fresh store: %v", err)
	}
	_, err := s.Compact(0)
	wantErr(t, err, mvcc.ErrCompacted)
	_, err = s.Compact(2)
	wantErr(t, err, mvcc.ErrFutureRevision)
	put(t, s, "a", "1")
	put(t, s, "a", "2")
	done, err := s.Compact(2)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	for _, rev := range []int64{0, 1, 2} {
		_, err = s.Compact(rev)
		wantErr(t, err, mvcc.ErrCompacted)
	}
	if s.CompactRevision() != 2 || s.Revision() != 3 {
		t.Fatalf("compact rev %d rev %d", s.CompactRevision(), s.Revision())
	}
}

func TestCompactKeepsNewestVersionOnly(t *testing.T) {
	s := newStore(t)
	put(t, s, "a", "1")    // 2
	put(t, s, "a", "2")    // 3
	del(t, s, "a", "")     // 4
	put(t, s, "a", "3")    // 5
	put(t, s, "gone", "")  // 6
	del(t, s, "gone", "")  // 7
	put(t, s, "live", "x") // 8
	hashBefore, _ := s.Hash(8)
	done, err := s.Compact(7)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	// "gone" stays: its delete is at exactly the compact revision.
	if s.Len() != 3 {
		t.Fatalf("%d keys held after compaction, want 3 (a, gone, live): %v", s.Len(), s)
	}
	for rev := int64(7); rev <= 8; rev++ {
		res := get(t, s, mvcc.RangeRequest{Key: b("\x00"), End: b("\x00"), Revision: rev})
		if got := keysOf(res.KVs); !slices.Equal(got, []string{"a", "live"}[:rev-6]) {
			t.Fatalf("at %d: %v", rev, got)
		}
	}
	_, err = s.Range(&mvcc.RangeRequest{Key: b("a"), Revision: 6})
	wantErr(t, err, mvcc.ErrCompacted)
	if h, _ := s.Hash(8); h == hashBefore {
		t.Fatal("hash should cover the compact revision and dropped history")
	}
}

func TestKeyValueAliasesAreStable(t *testing.T) {
	s := newStore(t)
	val := b("value")
	put(t, s, "k", string(val))
	key := b("k")
	res, _, err := s.Put(&mvcc.PutRequest{Key: key, Value: val})
	if err != nil {
		t.Fatal(err)
	}
	_ = res
	key[0], val[0] = 'X', 'X' // the caller reuses its buffers
	kv := get(t, s, mvcc.RangeRequest{Key: b("k")}).KVs[0]
	if string(kv.Key) != "k" || string(kv.Value) != "value" {
		t.Fatalf("store kept the caller's buffers: %q=%q", kv.Key, kv.Value)
	}
}
