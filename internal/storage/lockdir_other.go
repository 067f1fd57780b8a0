//go:build !unix

package storage

// lockDir does not lock on systems without flock: there, the log store's
// own file lock is the only guard (raft-wal's and raft-boltdb's bbolt files
// wait for it).
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
