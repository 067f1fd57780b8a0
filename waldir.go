package kvstore

import (
	"path/filepath"

	"github.com/kvstore/kvstore/internal/storage"
)

// WithWALDir keeps the node's raft log and stable state (term and vote) in
// dir instead of the data dir, like etcd's --wal-dir, so that the log's
// fsyncs, which every write waits for, can go to a faster disk; the data
// dir keeps snapshots and metadata. Both log stores honour it: raft-wal
// writes dir/wal, raft-boltdb dir/raft.db.
//
// A relative dir is resolved against the working directory at Open, and
// the data dir records the absolute path: a data dir must always be
// opened with the WAL dir it was created with, at that path (a moved WAL
// dir must be mounted or linked back there). Open refuses, changing
// nothing:
//   - an empty dir, or WithWALDir with WithMemoryStorage (ErrInvalidOption);
//   - the data dir itself, a dir inside the data dir's own folders (raft,
//     snapshots) or a data dir inside the WAL dir's (wal, raft.db)
//     (ErrInvalidOption); any other folder, on any disk, is fine;
//   - a data dir created with another WAL dir, or with none, or a data dir
//     that keeps its own log opened with one; a recorded WAL dir that holds
//     no log (a disk not mounted): ErrWALDirMismatch, naming both;
//   - a WAL dir holding another member's log, another cluster's or another
//     kind's (ErrClusterMismatch, ErrLogStoreMismatch), or for a new data
//     dir any raft log or kvstore node's files (ErrClusterMismatch).
//
// The WAL dir is locked like the data dir (ErrDataDirLocked), and a full
// disk is probed there (see ErrNoSpace).
func WithWALDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return invalid("WithWALDir", "empty dir")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return invalid("WithWALDir", "%q: %v", dir, err)
		}
		c.walDir = abs
		return nil
	}
}

// checkWALDir checks WithWALDir against the rest of cfg and the data dir
// dir, before either is touched.
func checkWALDir(dir string, cfg *config) error {
	if cfg.walDir == "" {
		return nil
	}
	if cfg.memory != nil {
		return invalid("WithWALDir", "storage is in memory (WithMemoryStorage): there is no raft log on disk to move")
	}
	if dir == "" {
		return nil // openStorage refuses the missing data dir
	}
	dataDir, err := filepath.Abs(dir)
	if err != nil {
		return invalid("Open", "data dir %q: %v", dir, err)
	}
	if err := storage.CheckWALDirPlacement(dataDir, cfg.walDir); err != nil {
		return invalid("WithWALDir", "%q: %v", cfg.walDir, err)
	}
	return nil
}
