package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMeta: any kvstore.meta either names this node of this cluster or is
// refused, with ErrClusterMismatch or as a removed member's, and is never
// rewritten.
func FuzzMeta(f *testing.F) {
	f.Add([]byte(`{"format":1,"cluster":"kvstore","node":"n1"}`))
	f.Add([]byte(`{"format":1,"cluster":"other","node":"n1"}`))
	f.Add([]byte(`{"format":2,"cluster":"kvstore","node":"n1"}`))
	f.Add([]byte(`{"format":1,"cluster":"kvstore","node":"n2"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"format":1,"cluster":"kvstore","node":"n1"`))
	f.Add([]byte{})
	f.Add([]byte(`{"format":1,"cluster":"kvstore","node":"n1","log_store":"wal","wal_dir":"/elsewhere"}`))
	f.Add([]byte(`{"format":1,"cluster":"kvstore","node":"n1","removed":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, metaFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := checkDir(dir, Config{Cluster: "kvstore", Node: "n1", LogStore: LogStoreWAL})
		var removed *RemovedError
		if err != nil && !errors.Is(err, ErrClusterMismatch) && !errors.As(err, &removed) {
			t.Fatalf("error %v is neither ErrClusterMismatch nor a RemovedError", err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
			t.Fatal("checkDir rewrote an existing kvstore.meta")
		}
	})
}
