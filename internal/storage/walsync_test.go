package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestWALFlushPathFollowsAppends pins walsync.go's choice: appends of one
// entry flush with fsync(2); once an append carries several, flushes go
// through the ring until 8 appends in a row carry one again. Whatever the
// path, every entry is there after a reopen.
func TestWALFlushPathFollowsAppends(t *testing.T) {
	if _, err := newSyncRing(); err != nil {
		t.Skipf("no io_uring here (%v): every flush is fsync(2)", err)
	}
	dir := t.TempDir()
	cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: LogStoreWAL, SnapshotRetain: 1, Logger: hclog.NewNullLogger()}
	s, err := OpenDir(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	appendN := func(n int) {
		t.Helper()
		logs := make([]*raft.Log, n)
		for i := range logs {
			logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d", next)}
			next++
		}
		if err := s.Logs.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	counts := func() (ring, direct uint64) {
		return s.flushes.ringFlushes.Load(), s.flushes.directFlushes.Load()
	}

	for range 10 {
		appendN(1)
	}
	if ring, direct := counts(); ring != 0 || direct < 10 {
		t.Fatalf("single-entry appends: %d flushes through the ring, %d by fsync(2); want 0 and >= 10", ring, direct)
	}
	appendN(5)
	for range recentAppends - 1 {
		appendN(1)
	}
	ring, direct := counts()
	if ring != recentAppends {
		t.Fatalf("an append of 5 and %d of one after it: %d flushes through the ring, want %d", recentAppends-1, ring, recentAppends)
	}
	appendN(1) // the 8th single append in a row: back to fsync(2)
	if r, d := counts(); r != ring || d != direct+1 {
		t.Fatalf("after %d single appends: ring %d -> %d, fsync(2) %d -> %d; want fsync(2) only", recentAppends, ring, r, direct, d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenDir(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := uint64(1); i < next; i++ {
		var l raft.Log
		if err := s.Logs.GetLog(i, &l); err != nil || string(l.Data) != fmt.Sprintf("entry %d", i) {
			t.Fatalf("entry %d after reopen: %q %v", i, l.Data, err)
		}
	}
}

// TestWALFlushNoSyncRing: with Config.NoSyncRing every flush is fsync(2),
// batches or not.
func TestWALFlushNoSyncRing(t *testing.T) {
	cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: LogStoreWAL, SnapshotRetain: 1, Logger: hclog.NewNullLogger(), NoSyncRing: true}
	s, err := OpenDir(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range uint64(4) {
		logs := []*raft.Log{{Index: 2*i + 1, Term: 1, Type: raft.LogCommand}, {Index: 2*i + 2, Term: 1, Type: raft.LogCommand}}
		if err := s.Logs.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	if ring, direct := s.flushes.ringFlushes.Load(), s.flushes.directFlushes.Load(); ring != 0 || direct < 4 {
		t.Fatalf("%d flushes through the ring, %d by fsync(2); want 0 and >= 4", ring, direct)
	}
}

// TestSyncRingErrors: the ring reports a failed flush as os.File.Sync
// does, an *os.PathError carrying the errno, and stays usable; after close
// it refuses with os.ErrClosed.
func TestSyncRingErrors(t *testing.T) {
	r, err := newSyncRing()
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := r.fsync(f.Fd(), f.Name()); err != nil {
		t.Fatalf("fsync of a file: %v", err)
	}
	// A descriptor that is not open: the kernel's answer, EBADF, comes back.
	var pe *os.PathError
	if err := r.fsync(1<<20, "nothing"); !errors.As(err, &pe) || !errors.Is(err, syscall.EBADF) || pe.Path != "nothing" {
		t.Fatalf("fsync of a closed descriptor: %v, want a PathError for \"nothing\" with EBADF", err)
	}
	for i := range 3 { // the ring goes on after a failure
		if err := r.fsync(f.Fd(), f.Name()); err != nil {
			t.Fatalf("fsync %d after a failure: %v", i, err)
		}
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	if err := r.fsync(f.Fd(), f.Name()); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("fsync after close: %v, want os.ErrClosed", err)
	}
	if err := r.close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
