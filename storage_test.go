package kvstore

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestStorageKinds writes a log entry, a stable value and a snapshot, closes
// the storage, reopens it and reads them back, for every on-disk kind.
func TestStorageKinds(t *testing.T) {
	for _, kind := range []LogStore{LogStoreWAL, LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := config{id: "n1", clusterToken: DefaultClusterToken, logStore: kind, snapshotRetain: 2}
			s, err := openStorage(dir, &cfg, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.logs.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("entry")}}); err != nil {
				t.Fatal(err)
			}
			if err := s.stable.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			sink, err := s.snaps.Create(1, 1, 1, raft.Configuration{}, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			sink.Write([]byte("state"))
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			s, err = openStorage(dir, &cfg, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			var l raft.Log
			if err := s.logs.GetLog(1, &l); err != nil || string(l.Data) != "entry" {
				t.Fatalf("log after reopen: %+v %v", l, err)
			}
			if term, err := s.stable.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
				t.Fatalf("term after reopen: %d %v", term, err)
			}
			list, err := s.snaps.List()
			if err != nil || len(list) != 1 {
				t.Fatalf("snapshots after reopen: %v %v", list, err)
			}
			_, rc, err := s.snaps.Open(list[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if data, _ := io.ReadAll(rc); !bytes.Equal(data, []byte("state")) {
				t.Fatalf("snapshot data %q", data)
			}
		})
	}
}
