package kvstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// openDir opens a one-member node on dir with the given log store.
func openDir(t *testing.T, dir string, kind kvstore.LogStore) (*kvstore.Node, error) {
	t.Helper()
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		t.Fatal(err)
	}
	n, err := kvstore.Open(dir, kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithLogStore(kind),
		kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}))
	if err != nil {
		tr.Close()
	}
	return n, err
}

// TestOpenDataDirInUse: a second Open of a data dir that a node has open
// fails at once with ErrDataDirLocked (it used to block for ever in bbolt's
// file lock), on each log store; once the first node closes, it opens.
func TestOpenDataDirInUse(t *testing.T) {
	for _, kind := range []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dir := t.TempDir()
			first, err := openDir(t, dir, kind)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				n, err := openDir(t, dir, kind)
				if err == nil {
					n.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, kvstore.ErrDataDirLocked) {
					t.Fatalf("second open: %v, want ErrDataDirLocked", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("a second Open of an open data dir blocks")
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			again, err := openDir(t, dir, kind)
			if err != nil {
				t.Fatalf("open after close: %v", err)
			}
			again.Close()
		})
	}
}

// TestOpenOtherLogStore: a data dir written with one log store, opened with
// the other, is refused with ErrLogStoreMismatch naming both, and nothing is
// created beside the real log (it used to start an empty member on a new
// raft.db). Dirs written before kvstore.meta recorded the kind are read off
// their files.
func TestOpenOtherLogStore(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "recorded"
		if legacy {
			name = "legacy"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			n, err := openDir(t, dir, kvstore.LogStoreWAL)
			if err != nil {
				t.Fatal(err)
			}
			n.Close()
			if legacy {
				meta := filepath.Join(dir, "kvstore.meta")
				if err := os.WriteFile(meta, []byte(`{"format":1,"cluster":"kvstore","node":"n1"}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err = openDir(t, dir, kvstore.LogStoreBolt)
			if !errors.Is(err, kvstore.ErrLogStoreMismatch) || !errors.Is(err, kvstore.ErrClusterMismatch) {
				t.Fatalf("open with the other log store: %v, want ErrLogStoreMismatch", err)
			}
			t.Log(err)
			if _, err := os.Stat(filepath.Join(dir, "raft", "raft.db")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused open created raft.db: %v", err)
			}
			n, err = openDir(t, dir, kvstore.LogStoreWAL)
			if err != nil {
				t.Fatalf("open with the right log store: %v", err)
			}
			n.Close()
		})
	}
}
