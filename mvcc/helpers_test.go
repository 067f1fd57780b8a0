package mvcc_test

import (
	"errors"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

func newStore(t testing.TB) *mvcc.Store {
	t.Helper()
	s := mvcc.New(mvcc.Config{CheckLease: func(id int64) error {
		if id == 1 || id == 2 {
			return nil
		}
		return mvcc.ErrLeaseNotFound
	}})
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t testing.TB, s *mvcc.Store, key, value string) int64 {
	t.Helper()
	res, _, err := s.Put(&mvcc.PutRequest{Key: []byte(key), Value: []byte(value)})
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return res.Revision
}

func del(t testing.TB, s *mvcc.Store, key, end string) *mvcc.DeleteResult {
	t.Helper()
	res, _, err := s.DeleteRange(&mvcc.DeleteRequest{Key: []byte(key), End: []byte(end), PrevKV: true})
	if err != nil {
		t.Fatalf("delete %q: %v", key, err)
	}
	return res
}

func get(t testing.TB, s *mvcc.Store, r mvcc.RangeRequest) *mvcc.RangeResult {
	t.Helper()
	res, err := s.Range(&r)
	if err != nil {
		t.Fatalf("range %q-%q: %v", r.Key, r.End, err)
	}
	return res
}

func keysOf(kvs []mvcc.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}
