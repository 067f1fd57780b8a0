package mvcc_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// OverwriteValue changes only the current value: revisions, versions, the
// older versions and earlier snapshots stay, and the hash moves.
func TestOverwriteValue(t *testing.T) {
	for _, versions := range []int{1, 3, 600} { // 600 fills a sealed chunk
		t.Run(fmt.Sprint(versions, "versions"), func(t *testing.T) {
			s := mvcc.New(mvcc.Config{})
			defer s.Close()
			key := []byte("k")
			for i := range versions {
				if _, _, err := s.Put(&mvcc.PutRequest{Key: key, Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			rev := s.Revision()
			before, _ := s.Range(&mvcc.RangeRequest{Key: key})
			hash, _ := s.Hash(rev)
			snap := s.Snapshot()
			size := s.Size()
			if err := s.OverwriteValue(key, []byte("bad!")); err != nil {
				t.Fatal(err)
			}
			after, _ := s.Range(&mvcc.RangeRequest{Key: key})
			got, want := after.KVs[0], before.KVs[0]
			if string(got.Value) != "bad!" || got.ModRevision != want.ModRevision || got.CreateRevision != want.CreateRevision || got.Version != want.Version {
				t.Fatalf("after overwrite: %+v, was %+v", got, want)
			}
			if s.Revision() != rev {
				t.Fatalf("revision moved: %d, was %d", s.Revision(), rev)
			}
			if d := s.Size() - size; d != int64(len("bad!")-len(want.Value)) {
				t.Fatalf("size changed by %d", d)
			}
			if h, _ := s.Hash(rev); h == hash {
				t.Fatal("hash unchanged by the overwrite")
			}
			if versions > 1 {
				old, _ := s.Range(&mvcc.RangeRequest{Key: key, Revision: rev - 1})
				if want := fmt.Sprintf("v%d", versions-2); string(old.KVs[0].Value) != want {
					t.Fatalf("older version reads %q, want %q", old.KVs[0].Value, want)
				}
			}
			var buf bytes.Buffer
			if _, err := snap.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			restored := mvcc.New(mvcc.Config{})
			defer restored.Close()
			if err := restored.Restore(&buf); err != nil {
				t.Fatal(err)
			}
			if h, _ := restored.Hash(rev); h != hash {
				t.Fatal("a snapshot taken before the overwrite saw it")
			}
			// The store goes on as usual after it.
			if _, _, err := s.Put(&mvcc.PutRequest{Key: key, Value: []byte("next")}); err != nil {
				t.Fatal(err)
			}
			prev, _ := s.Range(&mvcc.RangeRequest{Key: key, Revision: rev})
			if string(prev.KVs[0].Value) != "bad!" {
				t.Fatalf("the overwritten version reads %q", prev.KVs[0].Value)
			}
		})
	}
}

func TestOverwriteValueRefuses(t *testing.T) {
	s := mvcc.New(mvcc.Config{})
	s.Put(&mvcc.PutRequest{Key: []byte("gone"), Value: []byte("v")})
	s.DeleteRange(&mvcc.DeleteRequest{Key: []byte("gone")})
	for _, tc := range []struct {
		key  string
		want error
	}{{"", mvcc.ErrEmptyKey}, {"never", mvcc.ErrKeyNotFound}, {"gone", mvcc.ErrKeyNotFound}} {
		if err := s.OverwriteValue([]byte(tc.key), []byte("x")); !errors.Is(err, tc.want) {
			t.Errorf("OverwriteValue(%q): %v, want %v", tc.key, err, tc.want)
		}
	}
	s.Close()
	if err := s.OverwriteValue([]byte("gone"), []byte("x")); !errors.Is(err, mvcc.ErrClosed) {
		t.Errorf("on a closed store: %v, want ErrClosed", err)
	}
}
