//go:build !linux

package storage

// prewriteHelps reports whether prewriting pays on dir's file system: it
// was measured on Linux's ext4 only (prewritefs_linux.go).
func prewriteHelps(string) bool { return false }
