package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// settle waits until no zeros are being written to the file.
func (p *prewriter) settle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.running {
		p.done.Wait()
	}
}

// state returns the log's end and how far zeros are written past it.
func (p *prewriter) state() (end, zeroed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end, p.zeroed
}

// createPrewritten creates a preallocated segment file of size bytes
// through walSync, as raft-wal does, with prewriting on.
func createPrewritten(t *testing.T, size int64) (*walFile, *walSync) {
	t.Helper()
	dir := t.TempDir()
	if !PrewriteHelps(dir) {
		t.Skip("prewriting is off on this file system (prewritefs_linux.go)")
	}
	s, _ := newWALSync(false, true)
	wf, err := s.Create(dir, "seg.wal", uint64(size))
	if err != nil {
		t.Fatal(err)
	}
	return wf.(*walFile), s
}

// TestPrewriteRunsAheadOfTheLogAndKeepsItsBytes appends records of random
// sizes through a prewritten file while its zeros are written (run it with
// -race), then reads the file back: every record as written, zeros
// everywhere else, and zeros written ahead of the end by as much as the
// file holds, between prewriteMinAhead and prewriteMaxAhead.
func TestPrewriteRunsAheadOfTheLogAndKeepsItsBytes(t *testing.T) {
	const size = 16 << 20
	f, s := createPrewritten(t, size)
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 0, size)
	var off int64
	for off < 9<<20 {
		rec := make([]byte, 1+rng.IntN(40<<10))
		for i := range rec {
			rec[i] = byte(1 + rng.IntN(255)) // never zero: a zero in the file is prewriting's or never written
		}
		if _, err := f.WriteAt(rec, off); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec...)
		off += int64(len(rec))
		if rng.IntN(8) == 0 {
			f.pre.settle()
			end, zeroed := f.pre.state()
			ahead := min(max(end, prewriteMinAhead), prewriteMaxAhead)
			if end != off || zeroed < end+ahead-prewriteBlock {
				t.Fatalf("after %d bytes: end %d, zeros written to %d; want end %d and zeros to at least %d", off, end, zeroed, off, end+ahead-prewriteBlock)
			}
		}
	}
	f.pre.settle()
	_, zeroed := f.pre.state()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.os.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size {
		t.Fatalf("file is %d bytes, want its preallocated %d", len(got), size)
	}
	if !bytes.Equal(got[:off], want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("the log's bytes changed, first at offset %d", i)
	}
	if i := bytes.IndexFunc(got[off:], func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("a non-zero byte past the log's end, at offset %d", off+int64(i))
	}
	if n := s.prewritten.Load(); n == 0 || int64(n) > zeroed {
		t.Fatalf("counted %d bytes of zeros written, want 1..%d", n, zeroed)
	}
}

// TestPrewriteStopsAtTheFileEndAndAtClose: the zeros never pass the
// preallocated size, and after Close nothing starts writing again.
func TestPrewriteStopsAtTheFileEndAndAtClose(t *testing.T) {
	const size = 3*prewriteChunk + 1000 // not a whole number of chunks or blocks
	f, _ := createPrewritten(t, size)
	if _, err := f.WriteAt([]byte("header"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{7}, 2*prewriteChunk), 6); err != nil {
		t.Fatal(err)
	}
	f.pre.settle()
	if _, zeroed := f.pre.state(); zeroed != size {
		t.Fatalf("zeros written to %d, want the file's end %d", zeroed, size)
	}
	info, err := f.os.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != size {
		t.Fatalf("file grew to %d bytes, want %d", info.Size(), size)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f.pre.beforeWrite(size-10, 10) // raft-wal never writes after Close; prewriting must not start if it did
	if f.pre.running {
		t.Fatal("zeros started after Close")
	}
}

// TestPrewriteWriteWaitsForTheChunkItOverlaps: a write of raft-wal's into
// the chunk of zeros being written waits until that chunk is done (else
// zeros could land on its bytes); one beside it does not wait.
func TestPrewriteWriteWaitsForTheChunkItOverlaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPrewriter(nil, 1<<20, nil, nil)
		p.mu.Lock()
		p.stopped = true // no goroutine of its own: the test plays it
		p.busy, p.busyFrom, p.busyTo = true, 8192, 8192+prewriteChunk
		p.mu.Unlock()

		p.beforeWrite(0, 8192) // ends where the chunk starts: no wait
		returned := make(chan struct{})
		go func() {
			p.beforeWrite(8000, 500)
			close(returned)
		}()
		synctest.Wait()
		select {
		case <-returned:
			t.Fatal("a write overlapping the chunk being written did not wait")
		default:
		}
		p.mu.Lock()
		p.busy = false
		p.done.Broadcast()
		p.mu.Unlock()
		<-returned
		if end, _ := p.state(); end != 8500 {
			t.Fatalf("end %d after the write, want 8500", end)
		}
	})
}

// TestPrewrittenLogSurvivesReopen: a raft-wal log with prewriting on
// keeps every entry across reopens, including appends to the tail segment
// raft-wal reopened (OpenWriter), over zeros written ahead of it.
func TestPrewrittenLogSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	if !PrewriteHelps(dir) {
		t.Skip("prewriting is off on this file system (prewritefs_linux.go)")
	}
	cfg := Config{Cluster: "kvstore", Node: "n1", LogStore: LogStoreWAL, SnapshotRetain: 1, Logger: hclog.NewNullLogger(), Prewrite: true}
	next := uint64(1)
	value := bytes.Repeat([]byte("v"), 3000)
	appendSome := func(s *Storage, batches int) {
		t.Helper()
		for range batches {
			logs := make([]*raft.Log, 16)
			for i := range logs {
				logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: fmt.Appendf(bytes.Clone(value), "entry %d", next)}
				next++
			}
			if err := s.Logs.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(s *Storage) {
		t.Helper()
		for i := uint64(1); i < next; i++ {
			var l raft.Log
			if err := s.Logs.GetLog(i, &l); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			if want := fmt.Appendf(bytes.Clone(value), "entry %d", i); !bytes.Equal(l.Data, want) {
				t.Fatalf("entry %d has other bytes", i)
			}
		}
	}
	s, err := OpenDir(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	appendSome(s, 20) // ~1 MB
	if s.Prewritten() == 0 {
		t.Fatal("no zeros written ahead of a 1 MB log")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if s, err = OpenDir(dir, cfg); err != nil {
			t.Fatalf("reopen %d: %v", round, err)
		}
		check(s)
		appendSome(s, 20)
		if s.Prewritten() == 0 {
			t.Fatalf("reopen %d: no zeros written ahead of the reopened tail", round)
		}
		check(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
