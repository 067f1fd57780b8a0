package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestWALDirDiskProbe: with a separate WAL dir, a member whose disk was
// full probes the WAL dir's filesystem, where its appends go, not the data
// dir's. A folder in the probe file's place makes a probe there fail.
func TestWALDirDiskProbe(t *testing.T) {
	for _, kind := range []LogStore{LogStoreWAL, LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dataDir, walDir := t.TempDir(), t.TempDir()
			cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: kind, WALDir: walDir, SnapshotRetain: 1, Logger: hclog.NewNullLogger()}
			st, err := OpenDir(dataDir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			guard := NewDiskGuard(st, "n1", nil, nil)
			if err := os.Mkdir(filepath.Join(dataDir, ".space-probe"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := guard.Probe(); err != nil {
				t.Fatalf("probe with the data dir blocked: %v (it should probe the WAL dir)", err)
			}
			if err := os.Mkdir(filepath.Join(walDir, ".space-probe"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := guard.Probe(); err == nil {
				t.Fatal("probe with the WAL dir blocked succeeded: it does not probe the WAL dir")
			}
		})
	}
}

// TestWALDirWiped: a data dir whose WAL dir lost its log (the identity
// kept) is refused with ErrWALDirMismatch rather than started on an empty
// log, which would forget the member's term and vote.
func TestWALDirWiped(t *testing.T) {
	for _, kind := range []LogStore{LogStoreWAL, LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dataDir, walDir := t.TempDir(), t.TempDir()
			cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: kind, WALDir: walDir, SnapshotRetain: 1, Logger: hclog.NewNullLogger()}
			st, err := OpenDir(dataDir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Stable.SetUint64([]byte("CurrentTerm"), 3); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(walDir, map[LogStore]string{LogStoreWAL: separateWALDir, LogStoreBolt: separateBoltFile}[kind])); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenDir(dataDir, cfg); !errors.Is(err, ErrWALDirMismatch) {
				t.Fatalf("open with the WAL dir's log gone: %v, want ErrWALDirMismatch", err)
			}
			if walLogPresent(walDir) {
				t.Fatal("a refused open created a new log")
			}
		})
	}
}

// TestCheckWALDirPlacement: the WAL dir may be anywhere but the data dir
// itself and the folders each dir reserves for itself.
func TestCheckWALDirPlacement(t *testing.T) {
	for _, tc := range []struct {
		data, wal string
		ok        bool
	}{
		{"/d", "/w", true},
		{"/d", "/d/wal", true},     // a folder of its own in the data dir
		{"/d", "/d/raftwal", true}, // not the reserved raft folder
		{"/w/data", "/w", true},    // the data dir in the WAL dir, beside the log
		{"/d", "/d", false},
		{"/d", "/d/raft", false},
		{"/d", "/d/raft/wal", false},
		{"/d", "/d/snapshots/x", false},
		{"/d", "/d/kvstore.meta", false},
		{"/w/wal", "/w", false},
		{"/w/raft.db/x", "/w", false},
		{"/w/kvstore.lock", "/w", false},
	} {
		err := CheckWALDirPlacement(tc.data, tc.wal)
		if (err == nil) != tc.ok {
			t.Errorf("data dir %s, WAL dir %s: %v, want ok=%v", tc.data, tc.wal, err, tc.ok)
		}
	}
}
