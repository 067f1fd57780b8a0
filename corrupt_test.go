package kvstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// What a node does with corrupt bytes on disk: a snapshot that fails its
// checksum (raft's file checksum, or the FSM's own) is never restored; the
// node falls back to an older snapshot and the log when it can, and
// refuses to start when it cannot. It never serves what the bad bytes say.

const corruptKeys = 30

func corruptValue(i int) string { return fmt.Sprintf("value-%02d", i) }

// openOnDisk opens the single member n1 of a cluster in dir.
func openOnDisk(t *testing.T, dir string, kind kvstore.LogStore, opts ...kvstore.Option) (*kvstore.Node, error) {
	t.Helper()
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]kvstore.Option{kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithLogStore(kind),
		kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond),
		kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"})}, opts...)
	n, err := kvstore.Open(dir, opts...)
	if err != nil {
		tr.Close()
	}
	return n, err
}

// fill writes the keys, taking a snapshot after each index in snapAfter.
func fill(t *testing.T, n *kvstore.Node, snapAfter ...int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range corruptKeys {
		if _, err := n.Put(ctx, []byte(fmt.Sprintf("k%02d", i)), []byte(corruptValue(i))); err != nil {
			t.Fatal(err)
		}
		for _, s := range snapAfter {
			if s == i {
				if err := n.Snapshot(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// checkServesWritten fails unless n serves exactly the written keys.
func checkServesWritten(t *testing.T, n *kvstore.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get, err := n.Get(ctx, []byte("k"), kvstore.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(get.KVs) != corruptKeys {
		t.Fatalf("%d keys served, %d written", len(get.KVs), corruptKeys)
	}
	for i, kv := range get.KVs {
		if string(kv.Value) != corruptValue(i) {
			t.Fatalf("%s served as %q, written as %q", kv.Key, kv.Value, corruptValue(i))
		}
	}
}

// snapshotDirs lists dir's raft snapshots, newest first.
func snapshotDirs(t *testing.T, dir string) []string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(paths) == 0 {
		t.Fatal("no snapshot on disk")
	}
	// Names start with term-index-time: the lexically greatest is newest
	// for one term, which is all these tests have.
	for i, j := 0, len(paths)-1; i < j; i, j = i+1, j-1 {
		paths[i], paths[j] = paths[j], paths[i]
	}
	for i := range paths {
		paths[i] = filepath.Dir(paths[i])
	}
	return paths
}

// flipIn flips a bit in the last byte of every occurrence of marker in
// path and reports how many it found.
func flipIn(t *testing.T, path string, marker []byte) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], marker)
		if j < 0 {
			break
		}
		data[i+j+len(marker)-1] ^= 0x01
		found++
		i += j + len(marker)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return found
}

// resealSnapshot recomputes the checksum raft's FileSnapshotStore keeps in
// meta.json, so that only the FSM's own checksums can catch a corruption.
func resealSnapshot(t *testing.T, snapDir string) {
	t.Helper()
	state, err := os.ReadFile(filepath.Join(snapDir, "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	metaPath := filepath.Join(snapDir, "meta.json")
	raw, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	h.Write(state)
	meta["CRC"] = h.Sum(nil)
	if raw, err = json.Marshal(meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metaPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

var diskKinds = []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt}

// The only snapshot is corrupt and the log behind it was truncated: the
// node cannot rebuild its state and refuses to start — whether raft's file
// checksum or the FSM's own catches it.
func TestCorruptOnlySnapshotRefusesToStart(t *testing.T) {
	for _, kind := range diskKinds {
		for _, reseal := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/reseal=%v", kind, reseal), func(t *testing.T) {
				dir := t.TempDir()
				n, err := openOnDisk(t, dir, kind, kvstore.WithTrailingLogs(2))
				if err != nil {
					t.Fatal(err)
				}
				fill(t, n, 20)
				n.Close()
				snap := snapshotDirs(t, dir)[0]
				if flipIn(t, filepath.Join(snap, "state.bin"), []byte(corruptValue(7))) == 0 {
					t.Fatal("the snapshot does not hold the value to corrupt")
				}
				if reseal {
					resealSnapshot(t, snap)
				}
				n, err = openOnDisk(t, dir, kind, kvstore.WithTrailingLogs(2))
				if err == nil {
					n.Close()
					t.Fatal("a node whose only snapshot is corrupt started")
				}
				if !errors.Is(err, kvstore.ErrCorruptSnapshot) {
					t.Fatalf("refused with %v, want ErrCorruptSnapshot", err)
				}
			})
		}
	}
}

// The newest snapshot is corrupt, an older one is good and the log still
// holds every entry after it: the node discards the bad snapshot, restores
// the older one, replays the log and serves exactly what was written.
func TestCorruptNewestSnapshotFallsBackToOlderAndLog(t *testing.T) {
	for _, kind := range diskKinds {
		for _, reseal := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/reseal=%v", kind, reseal), func(t *testing.T) {
				dir := t.TempDir()
				n, err := openOnDisk(t, dir, kind)
				if err != nil {
					t.Fatal(err)
				}
				fill(t, n, 10, 20)
				n.Close()
				snap := snapshotDirs(t, dir)[0]
				if flipIn(t, filepath.Join(snap, "state.bin"), []byte(corruptValue(15))) == 0 {
					t.Fatal("the newest snapshot does not hold the value to corrupt")
				}
				if reseal {
					resealSnapshot(t, snap)
				}
				n, err = openOnDisk(t, dir, kind)
				if err != nil {
					t.Fatal(err)
				}
				defer n.Close()
				checkServesWritten(t, n)
			})
		}
	}
}

// A corrupt byte inside a raft log entry must never be served. raft-wal
// checks its checksums only over the last batch of the last segment
// (torn-write recovery) and raft-boltdb has none on data pages; commands
// carry their own CRC-32C (internal/wire, format 2), and Open checks every
// retained entry, so the node refuses to start with ErrCorruptLog.
func TestCorruptLogIsNeverServed(t *testing.T) {
	for _, kind := range diskKinds {
		t.Run(kind.String(), func(t *testing.T) {
			dir := t.TempDir()
			n, err := openOnDisk(t, dir, kind)
			if err != nil {
				t.Fatal(err)
			}
			fill(t, n)
			n.Close()
			paths, _ := filepath.Glob(filepath.Join(dir, "raft", "wal", "*.wal"))
			paths = append(paths, filepath.Join(dir, "raft", "raft.db"))
			found := 0
			for _, p := range paths {
				if _, err := os.Stat(p); err == nil {
					found += flipIn(t, p, []byte(corruptValue(17)))
				}
			}
			if found == 0 {
				t.Fatal("the log does not hold the value to corrupt")
			}
			n, err = openOnDisk(t, dir, kind)
			if err == nil {
				n.Close()
				t.Fatal("a node started on a corrupt log")
			}
			if !errors.Is(err, kvstore.ErrCorruptLog) {
				t.Fatalf("refused with %v, want ErrCorruptLog", err)
			}
		})
	}
}

// The newest of two retained snapshots is corrupt and the log was compacted
// up to it: the older snapshot cannot be continued by the log. raft used to
// fall back to it anyway and panic ("log not found") when it reached the
// missing entries, exiting the process with status 2. Open must refuse with
// ErrCorruptSnapshot and the recovery instead, whichever checksum (raft's
// file CRC or the FSM's own) catches the damage.
func TestCorruptNewestSnapshotWithCompactedLogRefusesToStart(t *testing.T) {
	for _, kind := range diskKinds {
		for _, reseal := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/reseal=%v", kind, reseal), func(t *testing.T) {
				dir := t.TempDir()
				n, err := openOnDisk(t, dir, kind, kvstore.WithTrailingLogs(2))
				if err != nil {
					t.Fatal(err)
				}
				fill(t, n, 10, 20)
				n.Close()
				snaps := snapshotDirs(t, dir)
				if len(snaps) != 2 {
					t.Fatalf("%d snapshots retained, want 2", len(snaps))
				}
				if flipIn(t, filepath.Join(snaps[0], "state.bin"), []byte(corruptValue(15))) == 0 {
					t.Fatal("the newest snapshot does not hold the value to corrupt")
				}
				if reseal {
					resealSnapshot(t, snaps[0])
				}
				n, err = openOnDisk(t, dir, kind, kvstore.WithTrailingLogs(2))
				if err == nil {
					n.Close()
					t.Fatal("a node that cannot rebuild its state started")
				}
				if !errors.Is(err, kvstore.ErrCorruptSnapshot) || !strings.Contains(err.Error(), "wipe its data dir") {
					t.Fatalf("refused with %v, want ErrCorruptSnapshot and the recovery", err)
				}
				t.Log(err)
			})
		}
	}
}
