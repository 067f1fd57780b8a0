package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestStorageTailTruncationSurvivesReopen does to each on-disk log store
// what raft does to a restarted former leader whose uncommitted tail the
// new leader overwrites: store entries, delete a suffix, store the new
// leader's entries there, close, reopen and read every entry. raft-wal
// v0.4.0 marked the truncated segment sealed without writing its index
// block, and the reopened log could not read it ("sealed segment has no
// index block", hashicorp/raft-wal#31): a member that could never restart.
func TestStorageTailTruncationSurvivesReopen(t *testing.T) {
	for _, kind := range []LogStore{LogStoreWAL, LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: kind, SnapshotRetain: 2, Logger: hclog.NewNullLogger()}
			open := func() *Storage {
				t.Helper()
				s, err := OpenDir(dir, cfg)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			entries := func(from, to, term uint64) []*raft.Log {
				var logs []*raft.Log
				for i := from; i <= to; i++ {
					logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("%d@%d", i, term))})
				}
				return logs
			}
			s := open()
			if err := s.Logs.StoreLogs(entries(1, 20, 1)); err != nil {
				t.Fatal(err)
			}
			// The old leader's entries 11-20 were never committed; the new
			// leader (term 2) replaces them, twice over two restarts.
			for round, term := range []uint64{2, 3} {
				if err := s.Logs.DeleteRange(11, 20); err != nil {
					t.Fatal(err)
				}
				if err := s.Logs.StoreLogs(entries(11, 20, term)); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = open()
				for i := uint64(1); i <= 20; i++ {
					want := uint64(1)
					if i > 10 {
						want = term
					}
					var l raft.Log
					if err := s.Logs.GetLog(i, &l); err != nil {
						t.Fatalf("round %d: entry %d after reopen: %v", round, i, err)
					}
					if l.Term != want || string(l.Data) != fmt.Sprintf("%d@%d", i, want) {
						t.Fatalf("round %d: entry %d after reopen: term %d data %q, want term %d", round, i, l.Term, l.Data, want)
					}
				}
				if err := verifyEntries(t, s.Logs, 20); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStorageRepairsRaftWALv040Truncation opens a log that raft-wal v0.4.0
// truncated (testdata/raftwal-v0.4.0-truncated): its first segment is
// recorded as sealed with no index block. Open rebuilds the index from the
// segment's checksummed frames, so every entry reads back, twice (the
// repair is recorded, not redone).
func TestStorageRepairsRaftWALv040Truncation(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, walDir), os.DirFS("testdata/raftwal-v0.4.0-truncated")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, walDir, "README.md"))
	cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: LogStoreWAL, SnapshotRetain: 2, Logger: hclog.NewNullLogger()}
	for open := range 2 {
		s, err := OpenDir(dir, cfg)
		if err != nil {
			t.Fatalf("open %d: %v", open, err)
		}
		for i := uint64(1); i <= 20; i++ {
			want := uint64(1)
			if i > 10 {
				want = 2
			}
			var l raft.Log
			if err := s.Logs.GetLog(i, &l); err != nil {
				t.Fatalf("open %d: entry %d: %v", open, i, err)
			}
			if l.Term != want || string(l.Data) != fmt.Sprintf("%d@%d", i, want) {
				t.Fatalf("open %d: entry %d: term %d data %q, want term %d", open, i, l.Term, l.Data, want)
			}
		}
		if last, err := s.Logs.LastIndex(); err != nil || last != 20 {
			t.Fatalf("open %d: last index %d, %v; want 20", open, last, err)
		}
		if err := verifyEntries(t, s.Logs, 20); err != nil {
			t.Fatalf("open %d: %v", open, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// verifyEntries runs VerifyLog over logs and checks that it handed every
// one of the want command entries to its verify function.
func verifyEntries(t *testing.T, logs raft.LogStore, want int) error {
	t.Helper()
	seen := 0
	if err := VerifyLog(logs, func([]byte) error { seen++; return nil }); err != nil {
		return err
	}
	if seen != want {
		return fmt.Errorf("VerifyLog checked %d entries, want %d", seen, want)
	}
	return nil
}
