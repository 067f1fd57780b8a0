package kvstore_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// TestRestoreWALDir restores a backup into members whose raft logs live in
// separate WAL dirs (one absent, one existing and empty, one inside its
// data dir; both log stores): the data dirs hold no raft log, each opens
// only with its WAL dir, and the cluster serves the backed-up state.
func TestRestoreWALDir(t *testing.T) {
	backup := smallBackup(t)
	want, err := kvstore.ReadBackupStatus(bytes.NewReader(backup))
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		peers := []kvstore.Peer{{ID: "w1", Address: "w1"}, {ID: "w2", Address: "w2"}, {ID: "w3", Address: "w3"}}
		dataDirs := []string{filepath.Join(root, "d1"), filepath.Join(root, "d2"), filepath.Join(root, "d3")}
		walDirs := []string{filepath.Join(root, "fast", "w1"), filepath.Join(root, "w2"), filepath.Join(root, "d3", "wal-disk")}
		stores := []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt, kvstore.LogStoreWAL}
		if err := os.Mkdir(walDirs[1], 0o700); err != nil {
			t.Fatal(err)
		}
		for i, p := range peers {
			if _, err := kvstore.Restore(bytes.NewReader(backup), dataDirs[i], kvstore.RestoreMember(p.ID), kvstore.RestoreCluster(peers...),
				kvstore.RestoreClusterToken("moved"), kvstore.RestoreLogStore(stores[i]), kvstore.RestoreWALDir(walDirs[i])); err != nil {
				t.Fatalf("Restore %s: %v", p.ID, err)
			}
			if _, err := os.Stat(filepath.Join(dataDirs[i], "raft")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: the data dir has a raft folder (%v)", p.ID, err)
			}
			if entries, _ := os.ReadDir(walDirs[i]); len(entries) == 0 {
				t.Fatalf("%s: nothing in the WAL dir", p.ID)
			}
		}
		network := transport.NewNetwork()
		open := func(i int, extra ...kvstore.Option) (*kvstore.Node, error) {
			tr, err := network.Join(peers[i].Address)
			if err != nil {
				t.Fatal(err)
			}
			opts := []kvstore.Option{kvstore.WithID(peers[i].ID), kvstore.WithTransport(tr), kvstore.WithClusterToken("moved"), kvstore.WithLogStore(stores[i]),
				kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond)}
			n, err := kvstore.Open(dataDirs[i], append(opts, extra...)...)
			if err != nil {
				_ = tr.Close()
			}
			return n, err
		}
		if _, err := open(0); !errors.Is(err, kvstore.ErrWALDirMismatch) {
			t.Fatalf("opening a restored data dir without its WAL dir: %v, want ErrWALDirMismatch", err)
		}
		var nodes []*kvstore.Node
		for i := range peers {
			n, err := open(i, kvstore.WithWALDir(walDirs[i]))
			if err != nil {
				t.Fatalf("Open %s: %v", peers[i].ID, err)
			}
			t.Cleanup(func() { n.Close() })
			nodes = append(nodes, n)
		}
		waitLeaderOf(t, nodes)
		for _, n := range nodes {
			if h, err := n.HashKV(want.Revision); err != nil || h.Hash != want.Hash {
				t.Fatalf("%s: HashKV(%d) = %+v %v, want %08x", n.ID(), want.Revision, h, err, want.Hash)
			}
		}
		mustPut(t, nodes[0], "after", "restore")
	})
}

// TestRestoreWALDirRefuses: a WAL dir that holds anything is refused as a
// non-empty data dir is, one placed where WithWALDir would refuse it is an
// invalid option, and neither dir is touched; a backup that fails its
// check leaves the WAL dir as it was.
func TestRestoreWALDirRefuses(t *testing.T) {
	good := smallBackup(t)
	restore := func(backup []byte, dir string, wal string) error {
		_, err := kvstore.Restore(bytes.NewReader(backup), dir, kvstore.RestoreMember("a"),
			kvstore.RestoreCluster(kvstore.Peer{ID: "a", Address: "a"}), kvstore.RestoreClusterToken("t"), kvstore.RestoreWALDir(wal))
		return err
	}
	root := t.TempDir()
	used := filepath.Join(root, "used")
	if err := os.Mkdir(used, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(used, "x"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	if err := restore(good, data, used); !errors.Is(err, kvstore.ErrDataDirNotEmpty) {
		t.Fatalf("non-empty WAL dir: %v, want ErrDataDirNotEmpty", err)
	}
	for name, wal := range map[string]string{
		"the data dir":           data,
		"inside its snapshots":   filepath.Join(data, "snapshots", "w"),
		"inside its raft folder": filepath.Join(data, "raft"),
	} {
		if err := restore(good, data, wal); !errors.Is(err, kvstore.ErrInvalidOption) {
			t.Errorf("WAL dir %s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := kvstore.Restore(bytes.NewReader(good), data, kvstore.RestoreWALDir("")); !errors.Is(err, kvstore.ErrInvalidOption) {
		t.Errorf("empty WAL dir: %v, want ErrInvalidOption", err)
	}
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 1
	absent, empty := filepath.Join(root, "absent"), filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, wal := range []string{absent, empty, filepath.Join(data, "wal")} {
		if err := restore(corrupt, data, wal); !errors.Is(err, kvstore.ErrCorruptBackup) {
			t.Errorf("corrupt backup, WAL dir %s: %v", wal, err)
		}
	}
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "empty" || names[1] != "used" {
		t.Fatalf("refused restores left %v in %s, want only empty and used", names, root)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("the empty WAL dir holds %v", entries)
	}
	if entries, _ := os.ReadDir(used); len(entries) != 1 {
		t.Fatalf("the used WAL dir holds %v", entries)
	}
}
