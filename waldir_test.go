package kvstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// openWALDir opens a one-member node id on data dir dir with the given log
// store and extra options (WithWALDir), bootstrapping it if dir is new.
func openWALDir(t *testing.T, id, dir string, kind kvstore.LogStore, opts ...kvstore.Option) (*kvstore.Node, error) {
	t.Helper()
	tr, err := transport.NewNetwork().Join(id)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, kvstore.WithID(id), kvstore.WithTransport(tr), kvstore.WithLogStore(kind),
		kvstore.WithBootstrap(kvstore.Peer{ID: id, Address: id}))
	n, err := kvstore.Open(dir, opts...)
	if err != nil {
		tr.Close()
	}
	return n, err
}

// mustOpenWALDir is openWALDir for an open that must succeed; it waits
// until the node leads.
func mustOpenWALDir(t *testing.T, dir string, kind kvstore.LogStore, opts ...kvstore.Option) *kvstore.Node {
	t.Helper()
	n, err := openWALDir(t, "n1", dir, kind, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return leaderOf(t, []*kvstore.Node{n})
}

// exists reports whether path exists.
func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestWALDirLogStores: with WithWALDir, each log store writes its files in
// the WAL dir and none in the data dir, which keeps the snapshots and
// records the WAL dir; the node reopens from both with its data.
func TestWALDirLogStores(t *testing.T) {
	for _, kind := range []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dataDir, walDir := t.TempDir(), filepath.Join(t.TempDir(), "fast")
			n := mustOpenWALDir(t, dataDir, kind, kvstore.WithWALDir(walDir))
			mustPut(t, n, "a", "1")
			mustPut(t, n, "b", "2")
			if err := n.Snapshot(context.Background()); err != nil {
				t.Fatal(err)
			}
			mustPut(t, n, "c", "3") // only in the log
			rev, want := state(t, n)
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}

			logFile := map[kvstore.LogStore]string{kvstore.LogStoreWAL: "wal", kvstore.LogStoreBolt: "raft.db"}[kind]
			for _, name := range []string{logFile, "kvstore.wal.meta"} {
				if !exists(t, filepath.Join(walDir, name)) {
					t.Errorf("the WAL dir lacks %s", name)
				}
			}
			for _, name := range []string{"snapshots", "kvstore.meta"} {
				if exists(t, filepath.Join(walDir, name)) {
					t.Errorf("the WAL dir holds %s", name)
				}
			}
			if exists(t, filepath.Join(dataDir, "raft")) {
				t.Error("the data dir holds a raft log folder")
			}
			snaps, err := os.ReadDir(filepath.Join(dataDir, "snapshots"))
			if err != nil || len(snaps) == 0 {
				t.Errorf("the data dir holds no snapshot: %v", err)
			}
			var meta struct {
				WALDir string `json:"wal_dir"`
			}
			data, err := os.ReadFile(filepath.Join(dataDir, "kvstore.meta"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &meta); err != nil || meta.WALDir != walDir {
				t.Errorf("kvstore.meta records WAL dir %q (%v), want %q", meta.WALDir, err, walDir)
			}

			n = mustOpenWALDir(t, dataDir, kind, kvstore.WithWALDir(walDir))
			defer n.Close()
			if gotRev, got := state(t, n); gotRev < rev || got != want {
				t.Fatalf("after reopen: revision %d, %s; want %d, %s", gotRev, got, rev, want)
			}
		})
	}
}

// TestWALDirRelative: a relative WAL dir is resolved against the working
// directory at Open and recorded as absolute, so the node reopens with the
// absolute path, or the relative one from the same directory.
func TestWALDirRelative(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	dataDir := filepath.Join(base, "data")
	n := mustOpenWALDir(t, dataDir, kvstore.LogStoreWAL, kvstore.WithWALDir("wal-ssd"))
	mustPut(t, n, "k", "v")
	n.Close()
	if !exists(t, filepath.Join(base, "wal-ssd", "wal")) {
		t.Fatal("the relative WAL dir was not used")
	}
	n = mustOpenWALDir(t, dataDir, kvstore.LogStoreWAL, kvstore.WithWALDir(filepath.Join(base, "wal-ssd")))
	n.Close()
	n = mustOpenWALDir(t, "data", kvstore.LogStoreWAL, kvstore.WithWALDir("./wal-ssd/"))
	n.Close()
}

// tree returns every file under dir with its contents, for checking that a
// refused Open changed nothing ("" for a dir that does not exist).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			files[rel+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// sameTree fails t if dir's files differ from before. A refused Open may
// leave a new dir with an empty lock file, as it always has for data dirs.
func sameTree(t *testing.T, what, dir string, before map[string]string) {
	t.Helper()
	after := tree(t, dir)
	if len(before) == 0 && len(after) == 2 && after["./"] == "" && after["kvstore.lock"] == "" {
		return
	}
	for name, data := range before {
		if got, ok := after[name]; !ok || got != data {
			t.Errorf("%s: a refused open changed or removed %s", what, name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s: a refused open created %s", what, name)
		}
	}
}

// TestWALDirMismatch: a data dir opened with another WAL dir than the one it
// records, without one, or with one when it keeps its own log, and a data
// dir whose WAL dir lost its log (a disk not mounted), are refused with
// ErrWALDirMismatch naming both; a WAL dir holding a member's log is refused
// to a new data dir and to another member. Nothing is changed: the node then
// opens as it was.
func TestWALDirMismatch(t *testing.T) {
	for _, kind := range []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			base := t.TempDir()
			dataDir, walDir, other := filepath.Join(base, "data"), filepath.Join(base, "wal"), filepath.Join(base, "other")
			n := mustOpenWALDir(t, dataDir, kind, kvstore.WithWALDir(walDir))
			mustPut(t, n, "k", "v")
			_, want := state(t, n)
			n.Close()
			plain := filepath.Join(base, "plain") // keeps its own log
			n = mustOpenWALDir(t, plain, kind)
			n.Close()

			dirs := []string{dataDir, walDir, other, plain, filepath.Join(base, "new"), filepath.Join(base, "new2")}
			before := map[string]map[string]string{}
			for _, d := range dirs {
				before[d] = tree(t, d)
			}
			for _, tc := range []struct {
				name     string
				id, dir  string
				opts     []kvstore.Option
				want     error
				mentions []string
			}{
				{"another WAL dir", "n1", dataDir, []kvstore.Option{kvstore.WithWALDir(other)}, kvstore.ErrWALDirMismatch, []string{walDir, other, "WithWALDir"}},
				{"no WAL dir", "n1", dataDir, nil, kvstore.ErrWALDirMismatch, []string{walDir, "the data dir itself"}},
				{"WAL dir for a data dir with its own log", "n1", plain, []kvstore.Option{kvstore.WithWALDir(other)}, kvstore.ErrWALDirMismatch, []string{other, "the data dir itself"}},
				{"new data dir, WAL dir with its member's log", "n1", filepath.Join(base, "new"), []kvstore.Option{kvstore.WithWALDir(walDir)}, kvstore.ErrClusterMismatch, []string{walDir, "data dir is new"}},
				{"WAL dir of another member", "n2", filepath.Join(base, "new2"), []kvstore.Option{kvstore.WithWALDir(walDir)}, kvstore.ErrClusterMismatch, []string{walDir, `"n1"`, `"n2"`}},
				{"WAL dir that is another node's data dir", "n2", filepath.Join(base, "new2"), []kvstore.Option{kvstore.WithWALDir(plain)}, kvstore.ErrClusterMismatch, []string{plain}},
			} {
				_, err := openWALDir(t, tc.id, tc.dir, kind, tc.opts...)
				if !errors.Is(err, tc.want) || !errors.Is(err, kvstore.ErrClusterMismatch) {
					t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
					continue
				}
				for _, m := range tc.mentions {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("%s: %q does not mention %q", tc.name, err, m)
					}
				}
			}
			for _, d := range dirs {
				sameTree(t, d, d, before[d])
			}

			// A WAL dir without its log (its disk not mounted) is refused,
			// not started empty.
			if err := os.Rename(walDir, walDir+".away"); err != nil {
				t.Fatal(err)
			}
			if _, err := openWALDir(t, "n1", dataDir, kind, kvstore.WithWALDir(walDir)); !errors.Is(err, kvstore.ErrWALDirMismatch) || !strings.Contains(err.Error(), "mounted") {
				t.Errorf("open with an empty WAL dir: %v, want ErrWALDirMismatch", err)
			}
			if exists(t, walDir) {
				t.Error("a refused open created the missing WAL dir")
			}
			if err := os.Mkdir(walDir, 0o700); err != nil { // an empty mount point
				t.Fatal(err)
			}
			if _, err := openWALDir(t, "n1", dataDir, kind, kvstore.WithWALDir(walDir)); !errors.Is(err, kvstore.ErrWALDirMismatch) || !strings.Contains(err.Error(), "mounted") {
				t.Errorf("open with an empty WAL dir: %v, want ErrWALDirMismatch", err)
			}
			sameTree(t, "empty WAL dir", walDir, nil)
			os.RemoveAll(walDir)
			if err := os.Rename(walDir+".away", walDir); err != nil {
				t.Fatal(err)
			}

			n = mustOpenWALDir(t, dataDir, kind, kvstore.WithWALDir(walDir))
			defer n.Close()
			if _, got := state(t, n); got != want {
				t.Fatalf("after the refused opens: %s, want %s", got, want)
			}
		})
	}
}

// TestWALDirInvalid: WithWALDir with no dir, with in-memory storage, or
// placed on the data dir or in its folders (or the data dir in the WAL
// dir's) fails with ErrInvalidOption naming WithWALDir, touching neither
// dir; a folder of its own inside the data dir is fine.
func TestWALDirInvalid(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	for _, tc := range []struct {
		name         string
		dataDir, wal string
		memory       bool
	}{
		{"empty", data, "", false},
		{"memory storage", "", filepath.Join(base, "wal"), true},
		{"the data dir", data, data, false},
		{"the data dir, unclean", data, data + "/x/..", false},
		{"the data dir's raft folder", data, filepath.Join(data, "raft"), false},
		{"inside the data dir's snapshots", data, filepath.Join(data, "snapshots", "wal"), false},
		{"the data dir in the WAL dir's log", filepath.Join(base, "w", "wal"), filepath.Join(base, "w"), false},
	} {
		opts := []kvstore.Option{kvstore.WithWALDir(tc.wal)}
		if tc.memory {
			opts = append(opts, kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()))
		}
		_, err := openWALDir(t, "n1", tc.dataDir, kvstore.LogStoreWAL, opts...)
		if !errors.Is(err, kvstore.ErrInvalidOption) || !strings.Contains(err.Error(), "WithWALDir") {
			t.Errorf("%s: %v, want ErrInvalidOption naming WithWALDir", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
		entries, _ := os.ReadDir(base)
		if len(entries) != 0 {
			t.Fatalf("%s: a refused open created %v", tc.name, entries)
		}
	}
	n := mustOpenWALDir(t, data, kvstore.LogStoreWAL, kvstore.WithWALDir(filepath.Join(data, "wal-disk")))
	n.Close()
}

// TestWALDirLocked: a WAL dir in use by an open node, as its WAL dir or as
// its data dir, is refused at once with ErrDataDirLocked.
func TestWALDirLocked(t *testing.T) {
	base := t.TempDir()
	walDir := filepath.Join(base, "wal")
	n := mustOpenWALDir(t, filepath.Join(base, "data"), kvstore.LogStoreWAL, kvstore.WithWALDir(walDir))
	defer n.Close()
	if _, err := openWALDir(t, "n2", filepath.Join(base, "data2"), kvstore.LogStoreWAL, kvstore.WithWALDir(walDir)); !errors.Is(err, kvstore.ErrDataDirLocked) {
		t.Errorf("a second node on an open WAL dir: %v, want ErrDataDirLocked", err)
	}
	if _, err := openWALDir(t, "n2", walDir, kvstore.LogStoreWAL); !errors.Is(err, kvstore.ErrDataDirLocked) {
		t.Errorf("a node with an open WAL dir as its data dir: %v, want ErrDataDirLocked", err)
	}
	if exists(t, filepath.Join(base, "data2", "kvstore.meta")) {
		t.Error("a refused open claimed its data dir")
	}
}
