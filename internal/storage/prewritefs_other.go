//go:build !linux

package storage

// PrewriteHelps reports whether prewriting pays on dir's file system: it
// was measured on Linux's ext4 only (prewritefs_linux.go).
func PrewriteHelps(string) bool { return false }
