package storage

import (
	"bytes"
	"encoding/binary"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/hashicorp/go-hclog"
)

// fiemap ioctl (include/uapi/linux/fiemap.h): the file's extents, with
// FIEMAP_EXTENT_UNWRITTEN on preallocated ones not written yet.
const (
	fsIocFiemap      = 0xC020660B
	fiemapExtentLast = 0x1
	fiemapUnwritten  = 0x800
	fiemapHeaderLen  = 32
	fiemapExtentLen  = 56
)

// unwrittenBytes returns how many bytes of [from, to) of the file lie in
// unwritten extents; ok is false where the file system has no fiemap.
func unwrittenBytes(t *testing.T, fd uintptr, from, to int64) (n int64, ok bool) {
	t.Helper()
	const count = 512
	buf := make([]byte, fiemapHeaderLen+count*fiemapExtentLen)
	for start := from; start < to; {
		clear(buf)
		binary.NativeEndian.PutUint64(buf[0:], uint64(start))
		binary.NativeEndian.PutUint64(buf[8:], uint64(to-start))
		binary.NativeEndian.PutUint32(buf[24:], count) // fm_extent_count
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
			return 0, false
		}
		mapped := int(binary.NativeEndian.Uint32(buf[20:])) // fm_mapped_extents
		if mapped == 0 {
			return n, true
		}
		for i := range mapped {
			e := buf[fiemapHeaderLen+i*fiemapExtentLen:]
			logical, length := int64(binary.NativeEndian.Uint64(e[0:])), int64(binary.NativeEndian.Uint64(e[16:]))
			flags := binary.NativeEndian.Uint32(e[40:])
			if flags&fiemapUnwritten != 0 {
				n += max(0, min(logical+length, to)-max(logical, from))
			}
			start = logical + length
			if flags&fiemapExtentLast != 0 {
				return n, true
			}
		}
	}
	return n, true
}

// TestPrewriteLeavesWrittenExtents pins what prewriting is for: the space
// raft-wal preallocated is unwritten extents (ext4, XFS), and after the
// zeros ran ahead, the range ahead of the log's end is written extents,
// so an append there changes no extent map. Skipped where the file system
// reports no extents (tmpfs) or preallocates none.
func TestPrewriteLeavesWrittenExtents(t *testing.T) {
	const size = 8 << 20
	f, _ := createPrewritten(t, size)
	defer f.Close()
	fd := f.os.Fd()
	before, ok := unwrittenBytes(t, fd, 0, size)
	if !ok {
		t.Skip("no fiemap on this file system")
	}
	if before == 0 {
		t.Skip("this file system preallocates no unwritten extents: nothing for prewriting to do")
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{1}, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	f.pre.settle()
	end, zeroed := f.pre.state()
	if zeroed < end+prewriteMinAhead {
		t.Fatalf("zeros written to %d, want at least %d", zeroed, end+prewriteMinAhead)
	}
	if n, _ := unwrittenBytes(t, fd, end, zeroed); n != 0 {
		t.Fatalf("%d bytes of [%d, %d), ahead of the log, are still unwritten extents", n, end, zeroed)
	}
	if n, _ := unwrittenBytes(t, fd, zeroed, size); n == 0 {
		t.Fatal("the whole preallocation was written at once; prewriting should stay a bounded distance ahead")
	}
}

// TestPrewriteSkipsFileSystemsWithoutUnwrittenExtents: on tmpfs (no
// extents to convert) a log opened with prewriting asked for does not
// prewrite.
// Skipped where no tmpfs is mounted at /dev/shm.
func TestPrewriteSkipsFileSystemsWithoutUnwrittenExtents(t *testing.T) {
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		t.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "prewrite-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := OpenDir(dir, Config{Cluster: "kvstore", Node: "n1", LogStore: LogStoreWAL, SnapshotRetain: 1, Logger: hclog.NewNullLogger(), Prewrite: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.flushes.zeros != nil {
		t.Fatal("a raft-wal log on tmpfs opened with its segments prewritten")
	}
}
