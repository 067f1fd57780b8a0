package kvstore_test

import (
	"os"

	"golang.org/x/sys/unix"
)

// prewritingFS reports whether the test's data dirs (under os.TempDir)
// are on a file system where raft-wal segments are prewritten: ext4 or
// XFS (internal/storage/prewritefs_linux.go).
func prewritingFS() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(os.TempDir(), &st); err != nil {
		return false
	}
	return st.Type == unix.EXT4_SUPER_MAGIC || st.Type == unix.XFS_SUPER_MAGIC
}
