package kvstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// LogStore selects where a node keeps its raft log and stable state in its
// data dir.
type LogStore int

const (
	// LogStoreWAL keeps the raft log in hashicorp/raft-wal segment files:
	// one fsync per append, the default (BENCHMARKS.md: ~2.5x faster per
	// append than bolt).
	LogStoreWAL LogStore = iota
	// LogStoreBolt keeps the raft log and stable state in one
	// hashicorp/raft-boltdb/v2 file, for users of existing raft tooling.
	LogStoreBolt
)

func (k LogStore) String() string {
	switch k {
	case LogStoreWAL:
		return "wal"
	case LogStoreBolt:
		return "bolt"
	}
	return fmt.Sprintf("LogStore(%d)", int(k))
}

// storage is a node's raft storage: log, stable store and snapshots.
type storage struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	close  func() error
	// markRemoved records durably that the node was removed (removal.go).
	markRemoved func() error
	// raftDir is the folder of the on-disk raft log ("" in memory), where
	// a member whose disk was full probes it (diskspace.go).
	raftDir string
	// rotation holds raft-wal's failure to start a new segment, after which
	// it refuses every append until it is reopened (nil for other stores).
	rotation *walRotation
}

// Layout of a data dir:
//
//	raft/wal/        raft-wal segments and meta (LogStoreWAL)
//	raft/raft.db     raft-boltdb file (LogStoreBolt)
//	snapshots/       raft's FileSnapshotStore
//	kvstore.meta     whose data this is (meta.go)
//	kvstore.lock     held (flock) while a node has the dir open (lockdir_unix.go)
const (
	walDir      = "raft/wal"
	boltFile    = "raft/raft.db"
	snapshotDir = "" // FileSnapshotStore adds its own "snapshots" folder
)

// openStorage opens (creating if needed) the storage cfg asks for, under
// dir for the on-disk kinds, after checking that dir belongs to this node
// (see meta.go). The caller must call close once raft has shut down.
func openStorage(dir string, cfg *config, logger hclog.Logger) (*storage, error) {
	switch {
	case cfg.memory != nil:
		return cfg.memory.open(cfg)
	case dir == "":
		return nil, invalid("Open", "a data dir is required unless storage is in memory (WithMemoryStorage)")
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	st, err := openDiskStorage(dir, cfg, logger)
	if err != nil {
		unlock()
		return nil, err
	}
	closeStorage := st.close
	st.close = func() error { return errors.Join(closeStorage(), unlock()) }
	return st, nil
}

// openDiskStorage opens the on-disk storage under dir, which the caller
// has locked.
func openDiskStorage(dir string, cfg *config, logger hclog.Logger) (*storage, error) {
	if err := claimDir(dir, cfg); err != nil {
		return nil, err
	}
	markRemoved := func() error { return markDirRemoved(dir) }
	kind, retain := cfg.logStore, cfg.snapshotRetain
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		return nil, fmt.Errorf("kvstore: data dir: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, snapshotDir), retain, logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("kvstore: snapshot store: %w", err)
	}
	switch kind {
	case LogStoreWAL:
		path := filepath.Join(dir, walDir)
		if err := os.MkdirAll(path, 0o700); err != nil { // raft-wal needs it to exist
			return nil, fmt.Errorf("kvstore: wal dir: %w", err)
		}
		// We own the meta store: the repair below uses it before the WAL
		// opens, and v0.4.0's Close left it open and locked (v0.4.2 closes
		// it; closing it again is a no-op).
		meta := &metadb.BoltMetaDB{}
		if _, err := repairUnindexedSegments(path, meta, logger.Named("wal")); err != nil {
			meta.Close()
			return nil, err
		}
		rotation := &walRotation{}
		walLog := walLogger{Logger: logger.Named("wal"), rotation: rotation}
		wal, err := raftwal.Open(path, raftwal.WithLogger(walLog), raftwal.WithMetaStore(meta))
		if err != nil {
			meta.Close()
			return nil, fmt.Errorf("kvstore: opening raft-wal: %w", err)
		}
		closeAll := func() error { return errors.Join(wal.Close(), meta.Close()) }
		return &storage{logs: cached(wal), stable: wal, snaps: snaps, close: closeAll, markRemoved: markRemoved,
			raftDir: filepath.Join(dir, "raft"), rotation: rotation}, nil
	case LogStoreBolt:
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
		if err != nil {
			return nil, fmt.Errorf("kvstore: opening raft-boltdb: %w", err)
		}
		return &storage{logs: cached(bolt), stable: bolt, snaps: snaps, close: bolt.Close, markRemoved: markRemoved, raftDir: filepath.Join(dir, "raft")}, nil
	}
	return nil, fmt.Errorf("kvstore: unknown log store %v", kind)
}

// logCacheSize is how many of the newest log entries a node keeps in
// memory in front of its on-disk log store.
const logCacheSize = 1024

// cached puts raft's LogCache in front of an on-disk log store. raft reads
// back every entry it has just written: the leader to replicate it to each
// follower, every member to apply it. Without the cache each read is a
// syscall and a decode (a quarter of the CPU of a 64-writer put load).
func cached(store raft.LogStore) raft.LogStore {
	c, err := raft.NewLogCache(logCacheSize, store)
	if err != nil { // only for a non-positive capacity
		panic(err)
	}
	return c
}
