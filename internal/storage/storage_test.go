package storage

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
			cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: kind, SnapshotRetain: 2, Logger: hclog.NewNullLogger()}
			s, err := OpenDir(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Logs.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("entry")}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Stable.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			sink, err := s.Snaps.Create(1, 1, 1, raft.Configuration{}, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			sink.Write([]byte("state"))
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = OpenDir(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var l raft.Log
			if err := s.Logs.GetLog(1, &l); err != nil || string(l.Data) != "entry" {
				t.Fatalf("log after reopen: %+v %v", l, err)
			}
			if term, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
				t.Fatalf("term after reopen: %d %v", term, err)
			}
			list, err := s.Snaps.List()
			if err != nil || len(list) != 1 {
				t.Fatalf("snapshots after reopen: %v %v", list, err)
			}
			_, rc, err := s.Snaps.Open(list[0].ID)
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
