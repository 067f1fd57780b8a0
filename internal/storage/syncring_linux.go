//go:build linux

package storage

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The parts of io_uring's ABI (include/uapi/linux/io_uring.h) an fsync
// needs.
const (
	uringOffSQRing       = 0          // mmap offset of the submission and completion rings
	uringOffSQEs         = 0x10000000 // mmap offset of the submission entries
	uringFeatSingleMmap  = 1 << 0     // both rings in one mapping (Linux 5.4)
	uringOpFsync         = 3          // IORING_OP_FSYNC
	uringSQEAsync        = 1 << 4     // IOSQE_ASYNC: straight to a kernel worker, never inline
	uringRegisterEventfd = 4          // IORING_REGISTER_EVENTFD
	uringSQEBytes        = 64
	uringCQEBytes        = 16
	uringEntries         = 2 // one fsync in flight; the kernel rounds up to a power of two
)

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

// syncRing flushes files through an io_uring whose completions are
// signalled on an eventfd that Go's network poller watches. A goroutine
// calling fsync(2) keeps its thread, and the Go processor that thread
// holds, until the flush ends or the runtime's monitor takes the processor
// back (after 20 µs at the earliest, often later), and on return it waits
// in the global run queue if no processor is free. A goroutine calling
// syncRing.fsync parks in the poller while a kernel worker flushes, so its
// processor goes on running other goroutines at once. The price is a
// wake-up through the poller: on an idle process about 10 µs more per
// flush, on a busy one the time until a processor next looks at the
// poller. ringSync (walsync.go) decides when that is worth paying.
//
// The ring holds one fsync at a time: mu serializes calls, so the
// submission and completion queues are only ever touched under it.
type syncRing struct {
	mu     sync.Mutex
	fd     int
	event  *os.File // the eventfd, nonblocking, so reads park in the poller
	rings  []byte   // the submission and completion rings (one mapping)
	sqes   []byte   // the submission entries
	sqTail *uint32
	sqMask uint32
	sqIdx  unsafe.Pointer // the submission ring's array of entry indexes
	cqHead *uint32
	cqTail *uint32
	cqMask uint32
	cqes   unsafe.Pointer
	closed bool
}

// newSyncRing sets up a ring, or says why the kernel will not give one:
// no io_uring (before Linux 5.4, or built without it), or refused (a
// seccomp filter, as Docker's default profile, or kernel.io_uring_disabled).
func newSyncRing() (*syncRing, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(unix.SYS_IO_URING_SETUP, uringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &syncRing{fd: int(fd)}
	fail := func(err error) (*syncRing, error) {
		r.unmap()
		unix.Close(r.fd)
		return nil, err
	}
	if p.features&uringFeatSingleMmap == 0 {
		return fail(errors.New("io_uring: the kernel maps its rings separately (before Linux 5.4)"))
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uringCQEBytes)
	rings, err := unix.Mmap(r.fd, uringOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail(fmt.Errorf("io_uring rings: mmap: %w", err))
	}
	r.rings = rings
	sqes, err := unix.Mmap(r.fd, uringOffSQEs, int(p.sqEntries*uringSQEBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail(fmt.Errorf("io_uring entries: mmap: %w", err))
	}
	r.sqes = sqes
	base := unsafe.Pointer(&rings[0])
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqIdx = unsafe.Add(base, p.sqOff.array)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Add(base, p.cqOff.cqes)

	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("eventfd: %w", err))
	}
	e := int32(efd)
	if _, _, errno := syscall.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uringRegisterEventfd, uintptr(unsafe.Pointer(&e)), 1, 0, 0); errno != 0 {
		unix.Close(efd)
		return fail(fmt.Errorf("io_uring_register eventfd: %w", errno))
	}
	r.event = os.NewFile(uintptr(efd), "io_uring-eventfd")
	return r, nil
}

// fsync flushes the file open as fd, data and metadata, as fsync(2) does,
// and returns its error as os.File.Sync would (an *os.PathError naming
// name). The caller keeps fd open until it returns.
func (r *syncRing) fsync(fd uintptr, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return &os.PathError{Op: "sync", Path: name, Err: os.ErrClosed}
	}
	tail := atomic.LoadUint32(r.sqTail)
	i := tail & r.sqMask
	sqe := r.sqes[i*uringSQEBytes : (i+1)*uringSQEBytes]
	clear(sqe) // fsync_flags 0: a full fsync, not fdatasync
	sqe[0] = uringOpFsync
	sqe[1] = uringSQEAsync
	*(*int32)(unsafe.Pointer(&sqe[4])) = int32(fd)
	*(*uint64)(unsafe.Pointer(&sqe[32])) = uint64(tail) // user_data
	*(*uint32)(unsafe.Add(r.sqIdx, 4*uintptr(i))) = i
	atomic.StoreUint32(r.sqTail, tail+1) // publishes the entry to the kernel
	for {
		n, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 1, 0, 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			// Not consumed: withdraw it, so the ring stays in step.
			atomic.StoreUint32(r.sqTail, tail)
			return &os.PathError{Op: "sync", Path: name, Err: fmt.Errorf("io_uring_enter: %w", errno)}
		}
		if n != 1 {
			atomic.StoreUint32(r.sqTail, tail)
			return &os.PathError{Op: "sync", Path: name, Err: fmt.Errorf("io_uring_enter took %d entries, not 1", n)}
		}
		break
	}
	// Completions are counted on the eventfd. A count left from a flush
	// whose completion was read before its signal only costs one more turn.
	var count [8]byte
	for {
		head := atomic.LoadUint32(r.cqHead)
		if head != atomic.LoadUint32(r.cqTail) {
			cqe := unsafe.Add(r.cqes, uintptr(head&r.cqMask)*uringCQEBytes)
			res := *(*int32)(unsafe.Add(cqe, 8))
			atomic.StoreUint32(r.cqHead, head+1)
			if res < 0 {
				return &os.PathError{Op: "sync", Path: name, Err: syscall.Errno(-res)}
			}
			return nil
		}
		if _, err := r.event.Read(count[:]); err != nil {
			// The fsync is in the kernel's hands and its outcome unknown:
			// the ring cannot be reused safely.
			r.closeLocked()
			return &os.PathError{Op: "sync", Path: name, Err: fmt.Errorf("io_uring eventfd: %w", err)}
		}
	}
}

// close releases the ring; fsync afterwards returns os.ErrClosed.
func (r *syncRing) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closeLocked()
}

func (r *syncRing) closeLocked() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.unmap()
	return errors.Join(r.event.Close(), unix.Close(r.fd))
}

func (r *syncRing) unmap() {
	if r.rings != nil {
		unix.Munmap(r.rings)
		r.rings = nil
	}
	if r.sqes != nil {
		unix.Munmap(r.sqes)
		r.sqes = nil
	}
}
