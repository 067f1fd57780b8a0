package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// A data dir records whose state it holds, so that a node is never started
// on another cluster's or another member's files.
//
//	kvstore.meta   JSON: {"format": 1, "cluster": token, "node": ID, "log_store": kind, "wal_dir": path, "removed": bool}
//
// It is written when a node first opens an empty dir, and again only to
// record the node's removal from its cluster; it is checked on every Open.

const (
	metaFile    = "kvstore.meta"
	metaVersion = 1
)

type dataMeta struct {
	Format  int    `json:"format"`
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	// LogStore is the kind of raft log store the dir holds ("wal" or
	// "bolt"). Dirs written before it was recorded lack it; their kind is
	// read off the files (logStoreOf).
	LogStore string `json:"log_store,omitempty"`
	// WALDir is the absolute path of the separate WAL dir that holds the
	// raft log (waldir.go), "" when the log is in the data dir.
	WALDir string `json:"wal_dir,omitempty"`
	// Removed records that the node was removed from its cluster
	// (Storage.MarkRemoved); such a dir is never opened again.
	Removed bool `json:"removed,omitempty"`
}

// check compares the recorded identity with the configured one; dir is
// where m was read, for dirs that do not record their log store ("" for a
// Memory, which has one kind only).
func (m dataMeta) check(dir string, cfg Config) error {
	kind := m.LogStore
	if kind == "" && dir != "" {
		kind = logStoreOf(dir)
	}
	switch {
	case m.Format != metaVersion:
		return fmt.Errorf("%w: data format %d, this build reads %d", ErrClusterMismatch, m.Format, metaVersion)
	case m.Cluster != cfg.Cluster:
		return fmt.Errorf("%w: the data belongs to cluster %q, not %q", ErrClusterMismatch, m.Cluster, cfg.Cluster)
	case m.Node != cfg.Node:
		return fmt.Errorf("%w: the data belongs to node %q, not %q", ErrClusterMismatch, m.Node, cfg.Node)
	case m.WALDir != cfg.WALDir:
		return fmt.Errorf("%w: the data dir's raft log is in %s, this node is configured with %s (WithWALDir)", ErrWALDirMismatch, describeWALDir(m.WALDir), describeWALDir(cfg.WALDir))
	case kind != "" && kind != cfg.LogStore.String():
		return fmt.Errorf("%w: the data dir holds a %q raft log, this node is configured for %q (WithLogStore)", ErrLogStoreMismatch, kind, cfg.LogStore)
	case m.Removed:
		return &RemovedError{Node: m.Node, Cluster: m.Cluster}
	}
	return nil
}

// checkDir checks dir's metadata against cfg, reporting whether dir is new
// (records no identity yet).
func checkDir(dir string, cfg Config) (newDir bool, err error) {
	path := filepath.Join(dir, metaFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("kvstore: data dir: %w", err)
	}
	var m dataMeta
	if err := json.Unmarshal(data, &m); err != nil {
		// A corrupt identity cannot prove the dir is this node's:
		// refused like a foreign one (Invariant 6: a typed error).
		return false, fmt.Errorf("%w: %s is corrupt: %v", ErrClusterMismatch, path, err)
	}
	return false, m.check(dir, cfg)
}

// recordDir writes the metadata of the new data dir dir for cfg.
func recordDir(dir string, cfg Config) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kvstore: data dir: %w", err)
	}
	return writeMeta(dir, dataMeta{Format: metaVersion, Cluster: cfg.Cluster, Node: cfg.Node, LogStore: cfg.LogStore.String(), WALDir: cfg.WALDir})
}

// logStoreOf names the kind of raft log store found in dir, "" if none.
func logStoreOf(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, walDir)); err == nil {
		return LogStoreWAL.String()
	}
	if _, err := os.Stat(filepath.Join(dir, boltFile)); err == nil {
		return LogStoreBolt.String()
	}
	return ""
}

// writeMeta replaces dir's metadata atomically and durably.
func writeMeta(dir string, m dataMeta) error {
	path := filepath.Join(dir, metaFile)
	data, _ := json.Marshal(m)
	tmp := path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("kvstore: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("kvstore: writing %s: %w", path, err)
	}
	return syncDir(dir)
}

// markDirRemoved records in dir's metadata that its node was removed.
func markDirRemoved(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return fmt.Errorf("kvstore: data dir: %w", err)
	}
	var m dataMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("kvstore: reading %s: %w", metaFile, err)
	}
	m.Removed = true
	return writeMeta(dir, m)
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Sync(), f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
