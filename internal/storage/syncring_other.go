//go:build !linux

package storage

import "errors"

// syncRing is Linux's io_uring (syncring_linux.go); elsewhere every flush
// is fsync(2).
type syncRing struct{}

func newSyncRing() (*syncRing, error) {
	return nil, errors.New("io_uring is Linux's")
}

func (*syncRing) fsync(uintptr, string) error { panic("unreachable: no ring outside Linux") }

func (*syncRing) close() error { return nil }
