package storage

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// prewriter writes zeros into the space raft-wal preallocated for a
// segment file, a little ahead of the log's end, so that appends
// overwrite blocks the file system has already written.
//
// Why: raft-wal preallocates each 64 MiB segment with fallocate(2), which
// on ext4 and XFS reserves the blocks as unwritten extents. The first
// write into such a block converts its extent to written, a metadata
// change that the next flush must commit to the file system's journal
// before it returns: an append that reaches a new block pays a journal
// commit on top of its data flush, and an append of several entries
// reaches one nearly every time. After the zeros are written and flushed
// here, in the background, a flush of the log writes its data and
// nothing else. On this project's 2-core machine (ext4 on a virtual
// disk), three writers appending 6 KB and flushing, each to its own
// segment file, took 0.61 ms per append at the median without it and
// 0.37 ms with it (BenchmarkSegmentAppend; BENCHMARKS.md, "Appends over
// written blocks").
// PostgreSQL writes zeros into each new WAL segment for the same reason
// (wal_init_zero).
//
// What is written is what the preallocated space already reads as, zeros,
// and only past the end of every write raft-wal has made to the file, so
// the file's contents never change: a crash in the middle of it leaves
// the segment as raft-wal left it. raft-wal writes a segment at rising
// offsets (rewriting only at or below what it wrote before, when an
// append is rolled back), so everything it committed lies below that
// end. A write of raft-wal's that would overlap the chunk being written
// waits for it; in steady state the zeros stay ahead and nothing waits.
//
// The zeros run ahead of the end by as much as the file holds so far, at
// least prewriteMinAhead and at most prewriteMaxAhead: a short-lived log
// (a test's) costs a few kilobytes, a busy one keeps 4 MiB written ahead.
// The writing goroutine runs only while there is something to write and
// exits when it has caught up; close waits for it.
type prewriter struct {
	file  *os.File // raft-wal's segment file
	size  int64    // its preallocated size
	zeros []byte   // prewriteChunk zero bytes, shared read-only
	// written counts the bytes of zeros written (walSync's counter).
	written *atomic.Uint64

	mu   sync.Mutex
	done sync.Cond // a chunk was written, or the writing goroutine ended
	// end is the end of the furthest write raft-wal made to the file.
	end int64
	// zeroed is how far zeros are written and flushed, past end.
	zeroed int64
	// busyFrom and busyTo are the chunk being written, while busy.
	busyFrom, busyTo int64
	busy             bool
	running          bool // the writing goroutine is running
	stopped          bool // closed, or a write failed: write no more
}

// prewriteChunk is the size of one write of zeros; a write of raft-wal's
// that overlaps the chunk being written waits for at most one.
const prewriteChunk = 256 << 10

// prewriteMinAhead and prewriteMaxAhead bound how far ahead of the log's
// end the zeros run.
const (
	prewriteMinAhead = 64 << 10
	prewriteMaxAhead = 4 << 20
)

// prewriteBlock aligns where the zeros start: the block holding the log's
// end was written by raft-wal already.
const prewriteBlock = 4096

// PrewriteDefault is whether prewriting is on unless configured off: the
// unwritten extents it avoids are ext4's and XFS's, measured on Linux. It
// runs only on those file systems (PrewriteHelps).
const PrewriteDefault = runtime.GOOS == "linux"

func newPrewriter(file *os.File, size int64, zeros []byte, written *atomic.Uint64) *prewriter {
	p := &prewriter{file: file, size: size, zeros: zeros, written: written}
	p.done.L = &p.mu
	return p
}

// beforeWrite is called before raft-wal writes n bytes at off: it waits
// while that range overlaps the chunk of zeros being written, records the
// new end, and starts the writing goroutine if the zeros fell behind.
func (p *prewriter) beforeWrite(off, n int64) {
	p.mu.Lock()
	for p.busy && off < p.busyTo && off+n > p.busyFrom {
		p.done.Wait()
	}
	p.end = max(p.end, off+n)
	start := !p.running && !p.stopped && p.behind()
	if start {
		p.running = true
	}
	p.mu.Unlock()
	if start {
		go p.run()
	}
}

// next is where the next chunk of zeros starts. Caller holds p.mu.
func (p *prewriter) next() int64 {
	from := max(p.zeroed, p.end)
	return (from + prewriteBlock - 1) / prewriteBlock * prewriteBlock
}

// behind reports whether the zeros should run further ahead. Caller holds
// p.mu.
func (p *prewriter) behind() bool {
	ahead := min(max(p.end, prewriteMinAhead), prewriteMaxAhead)
	next := p.next()
	return next < p.size && next < p.end+ahead
}

// run writes chunks of zeros until they are far enough ahead, the file is
// closed, or a write fails (after which the file is left to raft-wal as it
// would be without prewriting: its own write will meet the same error).
func (p *prewriter) run() {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.done.Broadcast()
	defer func() { p.running = false }()
	for !p.stopped && p.behind() {
		from := p.next()
		to := min(from+int64(len(p.zeros)), p.size)
		p.busy, p.busyFrom, p.busyTo = true, from, to
		p.mu.Unlock()
		_, err := p.file.WriteAt(p.zeros[:to-from], from)
		p.mu.Lock()
		p.busy = false
		p.done.Broadcast()
		if err != nil {
			p.stopped = true
			return
		}
		// The flush outside the lock: raft-wal may write over these zeros
		// at once; its own flush orders its data after them.
		p.mu.Unlock()
		err = p.file.Sync()
		p.mu.Lock()
		if err != nil {
			p.stopped = true
			return
		}
		p.zeroed = to
		p.written.Add(uint64(to - from))
	}
}

// close stops the writing and waits for the goroutine, before raft-wal
// closes the file.
func (p *prewriter) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for p.running {
		p.done.Wait()
	}
}
