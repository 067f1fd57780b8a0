package mvcc

import (
	"bytes"
	"cmp"
	"slices"
)

// rangeAt answers r at revision rev (already resolved) and reports current
// as the header revision. The caller holds mu.
func (s *Store) rangeAt(r *RangeRequest, rev, current int64) *RangeResult {
	kr := newKeyRange(r.Key, r.End)
	if kr.single {
		return s.pointAt(r, rev, current)
	}
	res := &RangeResult{Revision: current}
	filtered := r.MinModRevision > 0 || r.MaxModRevision > 0 || r.MinCreateRevision > 0 || r.MaxCreateRevision > 0
	order := r.SortOrder
	if order == SortNone && r.SortTarget != SortByKey {
		order = SortAscend // rule 6: a non-KEY target without order sorts ascending
	}
	inKeyOrder := r.SortTarget == SortByKey && order != SortDescend
	limit := r.Limit
	if limit < 0 {
		limit = 0
	}
	passed := int64(0)
	s.scan(kr, func(it *keyItem) bool {
		v, ok := it.visible(rev)
		if !ok {
			return true
		}
		res.Count++ // rule 2: before filters and limit
		if r.CountOnly || (filtered && !passes(r, v)) {
			return true
		}
		passed++
		// In key order the limit can cut collection short; the scan goes on
		// only to count.
		if inKeyOrder && limit > 0 && passed > limit {
			return true
		}
		res.KVs = append(res.KVs, it.kv(v))
		return true
	})
	if r.CountOnly {
		res.KVs = nil
		return res // rule 4
	}
	if !inKeyOrder {
		sortKVs(res.KVs, r.SortTarget, order)
	}
	if limit > 0 && passed > limit {
		res.More = true // rule 3: decided after filters and limit
		res.KVs = res.KVs[:limit]
	}
	if r.KeysOnly {
		for i := range res.KVs {
			res.KVs[i].Value = nil
			res.KVs[i].Lease = keysOnlyLease(r, res.KVs[i].Lease)
		}
	}
	return res
}

// keysOnlyLease is the lease a keys-only range reports. etcd v3.7 answers
// keys-only ranges from its index, which holds no lease, unless it sorts by
// value and so reads the values: its recorded answers carry the lease only
// then. kvstore answers the same.
func keysOnlyLease(r *RangeRequest, lease int64) int64 {
	if r.SortTarget == SortByValue {
		return lease
	}
	return 0
}

func passes(r *RangeRequest, v fullVersion) bool {
	switch {
	case r.MinModRevision > 0 && v.main < r.MinModRevision,
		r.MaxModRevision > 0 && v.main > r.MaxModRevision,
		r.MinCreateRevision > 0 && v.create < r.MinCreateRevision,
		r.MaxCreateRevision > 0 && v.create > r.MaxCreateRevision:
		return false
	}
	return true
}

// sortKVs sorts kvs (given in key order) by target. The sort is stable, so
// ties stay in key order (SEMANTICS.md rule 6).
func sortKVs(kvs []KeyValue, target SortTarget, order SortOrder) {
	compare := func(a, b KeyValue) int {
		switch target {
		case SortByVersion:
			return cmp.Compare(a.Version, b.Version)
		case SortByCreateRevision:
			return cmp.Compare(a.CreateRevision, b.CreateRevision)
		case SortByModRevision:
			return cmp.Compare(a.ModRevision, b.ModRevision)
		case SortByValue:
			return bytes.Compare(a.Value, b.Value)
		}
		return bytes.Compare(a.Key, b.Key)
	}
	if order == SortDescend {
		slices.SortStableFunc(kvs, func(a, b KeyValue) int { return compare(b, a) })
		return
	}
	slices.SortStableFunc(kvs, compare)
}

// pointResult is a point read's result and its one KeyValue, allocated
// together.
type pointResult struct {
	res RangeResult
	kv  [1]KeyValue
}

// pointAt is rangeAt for a single key: the common read, with no scan, no
// sort, no closure, and one allocation.
func (s *Store) pointAt(r *RangeRequest, rev, current int64) *RangeResult {
	it, ok := s.tree.Get(probe(r.Key))
	if !ok {
		return &RangeResult{Revision: current}
	}
	v, ok := it.visible(rev)
	if !ok {
		return &RangeResult{Revision: current}
	}
	if r.CountOnly || !passes(r, v) {
		return &RangeResult{Revision: current, Count: 1}
	}
	p := &pointResult{res: RangeResult{Revision: current, Count: 1}}
	p.kv[0] = it.kv(v)
	if r.KeysOnly {
		p.kv[0].Value = nil
		p.kv[0].Lease = keysOnlyLease(r, p.kv[0].Lease)
	}
	p.res.KVs = p.kv[:]
	return &p.res
}
