package storage

import (
	"os"
	"sync/atomic"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"
)

// walSync is the file system raft-wal writes its segments through: the OS
// file system, with each flush done either by fsync(2) or through a
// syncRing (syncring_linux.go), chosen per flush.
//
// The ring frees the flushing goroutine's Go processor for the flush and
// costs a wake-up through the network poller after it. That pays when
// other goroutines want the processor, and not otherwise: with 64 writers
// on 2 cores (three members in one process), puts per second rose by a
// quarter to a third through etcd's API and 1.4x without it, while a
// single writer's puts lost 0.1 ms each when every flush went through
// the ring (BENCHMARKS.md, "Flushes that leave the processor free"). What
// tells them apart is the log itself: concurrent writes reach raft-wal as
// appends of several entries (raft batches what queued while the previous
// append was flushed), a lone writer's as appends of one. So a flush goes
// through the ring while any of the last 8 appends carried more than one
// entry, and through fsync(2) otherwise.
//
// Both flush the same way (a full fsync of the segment file), so the
// choice changes when the caller's processor is free, never what is on
// disk when Sync returns.
type walSync struct {
	*fs.FS
	ring *syncRing // nil: every flush is fsync(2)

	// recent has one bit per recent append, newest lowest: set when that
	// append carried more than one entry. Appends are raft's, one at a
	// time; a bit lost to a racing append would only delay the switch.
	recent atomic.Uint32

	// ringFlushes and directFlushes count flushes by the path taken.
	ringFlushes, directFlushes atomic.Uint64

	// zeros is prewriteChunk zero bytes when segments are prewritten
	// (prewrite.go), nil otherwise; prewritten counts the bytes written.
	zeros      []byte
	prewritten atomic.Uint64
}

// recentAppends is how many of the latest appends decide the path.
const recentAppends = 8

// newWALSync returns raft-wal's file system, flushing through a ring when
// useRing is set and the kernel gives one (ringErr says why it did not),
// and writing zeros ahead of each segment's end when prewrite is set.
func newWALSync(useRing, prewrite bool) (s *walSync, ringErr error) {
	s = &walSync{FS: fs.New()}
	if prewrite {
		s.zeros = make([]byte, prewriteChunk)
	}
	if useRing {
		s.ring, ringErr = newSyncRing()
	}
	return s, ringErr
}

// noteAppend records an append of n entries, before it is written.
func (s *walSync) noteAppend(n int) {
	bit := uint32(0)
	if n > 1 {
		bit = 1
	}
	s.recent.Store(s.recent.Load()<<1 | bit)
}

// viaRing reports whether the next flush goes through the ring.
func (s *walSync) viaRing() bool {
	return s.ring != nil && s.recent.Load()&(1<<recentAppends-1) != 0
}

// close releases the ring, after raft-wal has closed its files.
func (s *walSync) close() error {
	if s.ring == nil {
		return nil
	}
	return s.ring.close()
}

// Create implements types.VFS: raft-wal's new file (preallocated), whose
// first flush is raft-wal's own, which also flushes its directory.
func (s *walSync) Create(dir, name string, size uint64) (types.WritableFile, error) {
	wf, err := s.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	f := &walFile{WritableFile: wf, os: &wf.(*fs.File).File, sync: s}
	f.prewriteTo(int64(size))
	return f, nil
}

// OpenWriter implements types.VFS: an existing file, its directory entry
// already durable.
func (s *walSync) OpenWriter(dir, name string) (types.WritableFile, error) {
	wf, err := s.FS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	f := &walFile{WritableFile: wf, os: wf.(*os.File), sync: s}
	f.flushed.Store(true)
	if info, err := f.os.Stat(); err == nil {
		f.prewriteTo(info.Size())
	}
	return f, nil
}

// walFile is a segment file whose Sync takes walSync's path once raft-wal's
// own Sync has flushed it, and its directory, the first time.
type walFile struct {
	types.WritableFile          // raft-wal's file
	os                 *os.File // the same file
	sync               *walSync
	flushed            atomic.Bool // raft-wal's first Sync is done
	pre                *prewriter  // nil: not prewritten
}

// prewriteTo makes zeros run ahead of the file's end up to size, the
// space raft-wal preallocated, if segments are prewritten.
func (f *walFile) prewriteTo(size int64) {
	if f.sync.zeros != nil && size > 0 {
		f.pre = newPrewriter(f.os, size, f.sync.zeros, &f.sync.prewritten)
	}
}

// WriteAt writes raft-wal's bytes, past any zeros being written there.
func (f *walFile) WriteAt(p []byte, off int64) (int, error) {
	if f.pre != nil {
		f.pre.beforeWrite(off, int64(len(p)))
	}
	return f.WritableFile.WriteAt(p, off)
}

// Close closes the file once no zeros are being written to it.
func (f *walFile) Close() error {
	if f.pre != nil {
		f.pre.close()
	}
	return f.WritableFile.Close()
}

// Sync flushes the file.
func (f *walFile) Sync() error {
	if !f.flushed.Load() || !f.sync.viaRing() {
		f.sync.directFlushes.Add(1)
		if err := f.WritableFile.Sync(); err != nil {
			return err
		}
		f.flushed.Store(true)
		return nil
	}
	f.sync.ringFlushes.Add(1)
	raw, err := f.os.SyscallConn()
	if err != nil {
		return err
	}
	var flushErr error
	// Control keeps the descriptor open until the flush is done.
	if err := raw.Control(func(fd uintptr) { flushErr = f.sync.ring.fsync(fd, f.os.Name()) }); err != nil {
		return err
	}
	return flushErr
}

// walAppends is raft-wal's log store telling walSync the size of each
// append before it is written.
type walAppends struct {
	*raftwal.WAL
	sync *walSync
}

// StoreLog implements raft.LogStore.
func (w walAppends) StoreLog(l *raft.Log) error {
	w.sync.noteAppend(1)
	return w.WAL.StoreLog(l)
}

// StoreLogs implements raft.LogStore.
func (w walAppends) StoreLogs(logs []*raft.Log) error {
	w.sync.noteAppend(len(logs))
	return w.WAL.StoreLogs(logs)
}
