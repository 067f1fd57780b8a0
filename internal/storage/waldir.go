package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A node may keep its raft log apart from its data dir (Config.WALDir, the
// kvstore option WithWALDir, etcd's --wal-dir), so that the log's fsyncs go
// to a faster disk. The log store's stable state (term and vote) goes with
// it. Layout of such a WAL dir:
//
//	wal/              raft-wal segments and meta (LogStoreWAL)
//	raft.db           raft-boltdb file (LogStoreBolt)
//	kvstore.wal.meta  JSON: {"format": 1, "cluster": token, "node": ID, "log_store": kind}
//	kvstore.lock      held (flock) while a node has the WAL dir open
//
// The data dir keeps its snapshots and kvstore.meta, which records the WAL
// dir's absolute path ("wal_dir"); the WAL dir records whose log it holds.
// Together they refuse every pairing that would start a member on a log
// that is not its own, or on none:
//
//   - a data dir opened with another WAL dir than it records, or without
//     one, or one that records none opened with one: ErrWALDirMismatch,
//     naming both;
//   - a recorded WAL dir without its identity or its log (wiped, or a disk
//     not mounted): ErrWALDirMismatch; starting there would forget the
//     member's term and vote;
//   - a WAL dir that records another member, cluster or log store:
//     ErrClusterMismatch (ErrLogStoreMismatch for the kind);
//   - a new data dir with a WAL dir that already holds a raft log (this
//     member's, whose snapshots are gone with the old data dir, or a
//     foreign one) or another kvstore node's files: ErrClusterMismatch.
//
// Any other files in the WAL dir (a mount point's lost+found) are left
// alone. The WAL dir is locked like the data dir, with the same lock file
// name, so that a node using the dir as its data dir excludes one using it
// as a WAL dir and the other way round.

const (
	walMetaFile = "kvstore.wal.meta"
	// separateWALDir and separateBoltFile are the log store's files in a
	// separate WAL dir.
	separateWALDir   = "wal"
	separateBoltFile = "raft.db"
)

// walMeta is the identity record of a separate WAL dir.
type walMeta struct {
	Format   int    `json:"format"`
	Cluster  string `json:"cluster"`
	Node     string `json:"node"`
	LogStore string `json:"log_store"`
}

// CheckWALDirPlacement reports why walDir cannot be the separate WAL dir of
// data dir dataDir, nil if it can. Both must be absolute and clean. The WAL
// dir may not be the data dir itself (leave it unset for that), nor lie in
// a folder or file the data dir reserves (raft, snapshots, ...), nor the
// other way round; it may be any other folder, inside the data dir or not.
func CheckWALDirPlacement(dataDir, walDir string) error {
	// The names each dir uses for itself: neither dir may lie at or under
	// one of the other's.
	dataDirReserved := []string{"raft", "snapshots", metaFile, lockFile}
	walDirReserved := []string{separateWALDir, separateBoltFile, walMetaFile, lockFile}
	if dataDir == walDir {
		return errors.New("it is the data dir itself; leave it unset to keep the raft log in the data dir")
	}
	for _, name := range dataDirReserved {
		if within(walDir, filepath.Join(dataDir, name)) {
			return fmt.Errorf("%s is inside %s, which the data dir reserves", walDir, filepath.Join(dataDir, name))
		}
	}
	for _, name := range walDirReserved {
		if within(dataDir, filepath.Join(walDir, name)) {
			return fmt.Errorf("the data dir %s is inside %s, which the WAL dir reserves", dataDir, filepath.Join(walDir, name))
		}
	}
	return nil
}

// within reports whether path is dir or lies under it (both clean).
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// lockWALDir locks the separate WAL dir dir. A WAL dir that a data dir
// records (newDataDir false) and that does not exist is refused before it
// is created: its disk is likely not mounted.
func lockWALDir(dir string, newDataDir bool) (release func() error, err error) {
	if _, err := os.Stat(dir); !newDataDir && errors.Is(err, os.ErrNotExist) {
		return nil, missingWALDir(dir)
	}
	release, err = lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (as the WAL dir)", err)
	}
	return release, nil
}

// missingWALDir is the error of a recorded WAL dir that holds no log.
func missingWALDir(dir string) error {
	return fmt.Errorf("%w: the data dir records its raft log in %q, which holds no kvstore raft log (%s is missing): is its disk mounted? Starting without it would forget this member's log, term and vote",
		ErrWALDirMismatch, dir, walMetaFile)
}

// describeWALDir names where a data dir's raft log is for an error message.
func describeWALDir(walDir string) string {
	if walDir == "" {
		return "the data dir itself (no WAL dir)"
	}
	return fmt.Sprintf("%q", walDir)
}

// claimWALDir checks the separate WAL dir cfg.WALDir against cfg, writing
// its identity if it has none and may be claimed. newDataDir says whether
// the data dir is being created by this open (it records no identity yet).
// It changes nothing when it fails.
func claimWALDir(cfg Config, newDataDir bool) error {
	dir := cfg.WALDir
	path := filepath.Join(dir, walMetaFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var m walMeta
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("%w: %s is corrupt: %v", ErrClusterMismatch, path, err)
		}
		return m.check(dir, cfg, newDataDir)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("kvstore: WAL dir: %w", err)
	case !newDataDir:
		return missingWALDir(dir)
	}
	for _, name := range []string{metaFile, "raft", "snapshots", separateWALDir, separateBoltFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("%w: the WAL dir %s holds another kvstore node's files (%s); give this node an empty WAL dir", ErrClusterMismatch, dir, name)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kvstore: WAL dir: %w", err)
	}
	m := walMeta{Format: metaVersion, Cluster: cfg.Cluster, Node: cfg.Node, LogStore: cfg.LogStore.String()}
	data, _ = json.Marshal(m)
	tmp := path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("kvstore: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("kvstore: writing %s: %w", path, err)
	}
	return syncDir(dir)
}

// check compares a WAL dir's identity with cfg. A new data dir may take a
// WAL dir of its own member only while it holds no log yet (an earlier
// first open that failed between the two identities).
func (m walMeta) check(dir string, cfg Config, newDataDir bool) error {
	switch {
	case m.Format != metaVersion:
		return fmt.Errorf("%w: WAL dir %s: data format %d, this build reads %d", ErrClusterMismatch, dir, m.Format, metaVersion)
	case m.Cluster != cfg.Cluster || m.Node != cfg.Node:
		return fmt.Errorf("%w: the WAL dir %s holds the raft log of node %q of cluster %q, not of node %q of cluster %q",
			ErrClusterMismatch, dir, m.Node, m.Cluster, cfg.Node, cfg.Cluster)
	case m.LogStore != cfg.LogStore.String():
		return fmt.Errorf("%w: the WAL dir %s holds a %q raft log, this node is configured for %q (WithLogStore)", ErrLogStoreMismatch, dir, m.LogStore, cfg.LogStore)
	case !newDataDir && !walLogPresent(dir):
		return fmt.Errorf("%w: the WAL dir %s records node %q but holds no raft log (%s or %s): it was wiped; starting would forget this member's log, term and vote",
			ErrWALDirMismatch, dir, m.Node, separateWALDir, separateBoltFile)
	case newDataDir && walLogPresent(dir):
		return fmt.Errorf("%w: the WAL dir %s holds node %q's raft log, but its data dir is new (its snapshots and identity are gone): wipe the WAL dir too, or open the data dir it belongs to",
			ErrClusterMismatch, dir, m.Node)
	}
	return nil
}

// walLogPresent reports whether a separate WAL dir holds a log store's
// files.
func walLogPresent(dir string) bool {
	for _, name := range []string{separateWALDir, separateBoltFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}
