// Package storage keeps a kvstore node's raft state: its log, stable store
// (term and vote) and snapshots, either in a data dir or in memory.
//
// A data dir holds one of two raft log stores (raft-wal, the default, or
// raft-boltdb), raft's file snapshot store, an identity record that makes a
// node refuse another cluster's or another member's files (meta.go), and a
// lock file that keeps a second node out while one has the dir open. The
// raft log may live apart, in a separate WAL dir (waldir.go). The
// in-memory kind, [Memory], outlives the node that uses it, so tests can
// restart a node without touching the disk.
//
// Besides opening the stores, the package guards them: [VerifyLog] checks
// every retained entry before a node starts, [SnapshotGuard] refuses a
// snapshot the log does not continue, [DiskGuard] turns a full disk into
// [ErrNoSpace], and raft-wal v0.4.0's damage is repaired at open
// (walrepair.go).
//
// The package knows nothing of the node that uses it: the kvstore package
// passes it a [Config] and gets raft's stores back. Its sentinel errors are
// kvstore's public ones (kvstore exports the same values), except [ErrInUse]
// and [RemovedError], which kvstore reports as its ErrInvalidOption and
// ErrRemoved.
package storage

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
	"github.com/hashicorp/raft-wal/segment"
)

// LogStore selects which store keeps a data dir's raft log and stable
// state.
type LogStore int

const (
	// LogStoreWAL keeps the raft log in hashicorp/raft-wal segment files.
	LogStoreWAL LogStore = iota
	// LogStoreBolt keeps the raft log and stable state in one
	// hashicorp/raft-boltdb/v2 file.
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

// Config says whose storage is opened and how.
type Config struct {
	// Cluster and Node are the cluster token and the node ID the storage
	// must belong to; new storage records them.
	Cluster string
	Node    string
	// LogStore is the log store of a data dir (ignored by Memory).
	LogStore LogStore
	// WALDir, if set, is the absolute, clean path of a separate folder for
	// the raft log and stable state (waldir.go); the data dir then keeps
	// only snapshots and metadata. The caller checks its placement
	// (CheckWALDirPlacement). Ignored by Memory.
	WALDir string
	// SnapshotRetain is how many snapshots are kept.
	SnapshotRetain int
	// NoSyncRing makes every raft-wal flush an fsync(2), never one through
	// io_uring (walsync.go).
	NoSyncRing bool
	// Prewrite sets whether raft-wal's segments get zeros written ahead of
	// the log's end (prewrite.go), where the file system is one it helps
	// (ext4, XFS: prewritefs_linux.go); PrewriteDefault is what is used
	// unless the caller says otherwise.
	Prewrite bool
	// Logger receives the stores' logs; it must not be nil.
	Logger hclog.Logger
}

// Storage is a node's raft storage: log, stable store and snapshots, for
// raft.NewRaft. The caller may wrap Logs and Snaps (DiskGuard,
// SnapshotGuard) before handing them to raft, and must call Close once raft
// has shut down.
type Storage struct {
	Logs   raft.LogStore
	Stable raft.StableStore
	Snaps  raft.SnapshotStore

	close func() error
	// markRemoved records durably that the node was removed.
	markRemoved func() error
	// raftDir is the folder of the on-disk raft log ("" in memory), where
	// a member whose disk was full probes it (DiskGuard).
	raftDir string
	// rotation holds raft-wal's failure to start a new segment, after which
	// it refuses every append until it is reopened (nil for other stores).
	rotation *walRotation
	// flushes is raft-wal's file system (nil for other stores).
	flushes *walSync
}

// Close releases the stores (and a data dir's lock).
func (s *Storage) Close() error { return s.close() }

// OnDisk reports whether the raft log is on disk (not in memory), so that
// its appends are durable writes.
func (s *Storage) OnDisk() bool { return s.raftDir != "" }

// Flushes counts the raft-wal log's flushes since Open by the way they
// were done: through io_uring and by fsync(2) (walsync.go). ok is false for
// other stores, whose flushes are their own.
func (s *Storage) Flushes() (ring, fsync uint64, ok bool) {
	if s.flushes == nil {
		return 0, 0, false
	}
	return s.flushes.ringFlushes.Load(), s.flushes.directFlushes.Load(), true
}

// Prewritten is how many bytes of zeros were written ahead of the raft-wal
// log's end since Open (prewrite.go); 0 for other stores.
func (s *Storage) Prewritten() uint64 {
	if s.flushes == nil {
		return 0
	}
	return s.flushes.prewritten.Load()
}

// MarkRemoved records durably that the node was removed from its cluster:
// the storage is never opened again (RemovedError).
func (s *Storage) MarkRemoved() error { return s.markRemoved() }

// Layout of a data dir:
//
//	raft/wal/        raft-wal segments and meta (LogStoreWAL)
//	raft/raft.db     raft-boltdb file (LogStoreBolt)
//	snapshots/       raft's FileSnapshotStore
//	kvstore.meta     whose data this is (meta.go)
//	kvstore.lock     held (flock) while a node has the dir open (lockdir_unix.go)
//
// With a separate WAL dir (Config.WALDir) there is no raft folder: the log
// store is in the WAL dir (waldir.go).
const (
	walDir      = "raft/wal"
	boltFile    = "raft/raft.db"
	snapshotDir = "" // FileSnapshotStore adds its own "snapshots" folder
)

// OpenDir opens (creating if needed) the storage in data dir dir, after
// locking dir, and cfg.WALDir if set (ErrDataDirLocked if another node has
// either), and checking that both belong to cfg's node (see meta.go and
// waldir.go). A refused open leaves at most an empty lock file behind.
func OpenDir(dir string, cfg Config) (*Storage, error) {
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	st, err := openLocked(dir, cfg, &unlock)
	if err != nil {
		unlock()
		return nil, err
	}
	closeStorage := st.close
	st.close = func() error { return errors.Join(closeStorage(), unlock()) }
	return st, nil
}

// openLocked opens the storage in the locked data dir dir: it checks and
// claims dir and cfg.WALDir, which it locks too (adding the release to
// *unlock), and opens the stores.
func openLocked(dir string, cfg Config, unlock *func() error) (*Storage, error) {
	newDir, err := checkDir(dir, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.WALDir != "" {
		unlockWAL, err := lockWALDir(cfg.WALDir, newDir)
		if err != nil {
			return nil, err
		}
		unlockData := *unlock
		*unlock = func() error { return errors.Join(unlockWAL(), unlockData()) }
		if err := claimWALDir(cfg, newDir); err != nil {
			return nil, err
		}
	}
	if newDir {
		if err := recordDir(dir, cfg); err != nil {
			return nil, err
		}
	}
	return openDisk(dir, cfg)
}

// openDisk opens the stores of the data dir dir (and cfg.WALDir), which the
// caller has locked and claimed.
func openDisk(dir string, cfg Config) (*Storage, error) {
	markRemoved := func() error { return markDirRemoved(dir) }
	logger := cfg.Logger
	raftDir, walPath, boltPath := filepath.Join(dir, "raft"), filepath.Join(dir, walDir), filepath.Join(dir, boltFile)
	if cfg.WALDir != "" {
		raftDir, walPath, boltPath = cfg.WALDir, filepath.Join(cfg.WALDir, separateWALDir), filepath.Join(cfg.WALDir, separateBoltFile)
	}
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("kvstore: raft log dir: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, snapshotDir), cfg.SnapshotRetain, logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("kvstore: snapshot store: %w", err)
	}
	switch cfg.LogStore {
	case LogStoreWAL:
		if err := os.MkdirAll(walPath, 0o700); err != nil { // raft-wal needs it to exist
			return nil, fmt.Errorf("kvstore: wal dir: %w", err)
		}
		// We own the meta store: the repair below uses it before the WAL
		// opens, and v0.4.0's Close left it open and locked (v0.4.2 closes
		// it; closing it again is a no-op).
		meta := &metadb.BoltMetaDB{}
		if _, err := repairUnindexedSegments(walPath, meta, logger.Named("wal")); err != nil {
			meta.Close()
			return nil, err
		}
		rotation := &walRotation{}
		walLog := walLogger{Logger: logger.Named("wal"), rotation: rotation}
		flushes, ringErr := newWALSync(!cfg.NoSyncRing, cfg.Prewrite && PrewriteHelps(walPath))
		if ringErr != nil {
			logger.Debug("raft-wal flushes with fsync(2) only", "reason", ringErr)
		}
		wal, err := raftwal.Open(walPath, raftwal.WithLogger(walLog), raftwal.WithMetaStore(meta),
			raftwal.WithSegmentFiler(segment.NewFiler(walPath, flushes)))
		if err != nil {
			meta.Close()
			flushes.close()
			return nil, fmt.Errorf("kvstore: opening raft-wal: %w", err)
		}
		closeAll := func() error { return errors.Join(wal.Close(), meta.Close(), flushes.close()) }
		return &Storage{Logs: cached(walAppends{WAL: wal, sync: flushes}), Stable: wal, flushes: flushes, Snaps: snaps, close: closeAll, markRemoved: markRemoved,
			raftDir: raftDir, rotation: rotation}, nil
	case LogStoreBolt:
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: boltPath})
		if err != nil {
			return nil, fmt.Errorf("kvstore: opening raft-boltdb: %w", err)
		}
		return &Storage{Logs: cached(bolt), Stable: bolt, Snaps: snaps, close: bolt.Close, markRemoved: markRemoved, raftDir: raftDir}, nil
	}
	return nil, fmt.Errorf("kvstore: unknown log store %v", cfg.LogStore)
}

// logCacheSize and logCacheBytes bound the newest log entries a node
// keeps in memory in front of its on-disk log store (logcache.go): 1,024
// entries, and 2 MiB of entry data, which holds 1,024 puts of 2 KiB or
// about 75 txns of 100 puts of 256 bytes. Reads back need only the entries
// in flight, a few of raft's requests of at most 64 entries; a follower
// further behind is caught up from the store. 8 MiB held 8 MB more heap
// after a load of 1M keys in txns of 100 puts, to no read's benefit
// (BENCHMARKS.md, "Memory").
const (
	logCacheSize  = 1024
	logCacheBytes = 2 << 20
)

// cached puts a logCache in front of an on-disk log store.
func cached(store raft.LogStore) raft.LogStore {
	return newLogCache(store, logCacheSize, logCacheBytes)
}
