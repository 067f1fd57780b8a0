//go:build !linux

package kvstore_test

// prewritingFS reports whether raft-wal segments are prewritten here:
// only on Linux's ext4 and XFS.
func prewritingFS() bool { return false }
