package storage

import "golang.org/x/sys/unix"

// PrewriteHelps reports whether the file system holding dir keeps
// preallocated space as unwritten extents that prewriting converts: ext4
// (and ext2/3, which share its magic) and XFS. Elsewhere it would only
// write twice: tmpfs has no extents, and on Btrfs a write over space that
// was already written is copied anew, which prewriting would cause.
func PrewriteHelps(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC:
		return true
	}
	return false
}
