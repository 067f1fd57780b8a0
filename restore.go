package kvstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/storage"
)

// RestoreOption configures Restore.
type RestoreOption func(*restoreConfig) error

type restoreConfig struct {
	member       string
	members      []Peer
	clusterToken string
	logStore     LogStore
	walDir       string // RestoreWALDir (restore_waldir.go): absolute, "" in the data dir
}

// RestoreMember names the member whose data dir Restore prepares (the ID
// it will be opened with, WithID). Required.
func RestoreMember(id string) RestoreOption {
	return func(c *restoreConfig) error {
		if id == "" {
			return invalid("RestoreMember", "empty ID")
		}
		c.member = id
		return nil
	}
}

// RestoreCluster lists the members of the new cluster, the restored
// member included, like WithBootstrap (etcd's --initial-cluster). Each of
// them is restored from the same backup into its own dir. Required.
func RestoreCluster(peers ...Peer) RestoreOption {
	return func(c *restoreConfig) error {
		var probe config
		if err := WithBootstrap(peers...)(&probe); err != nil {
			return fmt.Errorf("%w (checked for RestoreCluster)", err)
		}
		for _, p := range peers {
			if p.Address == "" {
				return invalid("RestoreCluster", "peer %q has no address", p.ID)
			}
		}
		c.members = probe.bootstrap
		return nil
	}
}

// RestoreClusterToken sets the new cluster's token (WithClusterToken);
// give the restored cluster its own, so that it never mixes with the one
// backed up. Required.
func RestoreClusterToken(token string) RestoreOption {
	return func(c *restoreConfig) error {
		if token == "" {
			return invalid("RestoreClusterToken", "empty token")
		}
		c.clusterToken = token
		return nil
	}
}

// RestoreLogStore chooses the restored dir's raft log store (WithLogStore);
// the default is LogStoreWAL.
func RestoreLogStore(kind LogStore) RestoreOption {
	return func(c *restoreConfig) error {
		if kind < LogStoreWAL || kind > LogStoreBolt {
			return invalid("RestoreLogStore", "unknown log store %v", kind)
		}
		c.logStore = kind
		return nil
	}
}

// Restore prepares data dir dir, from a backup Node.Backup wrote, for one
// member of a new cluster: etcd's "etcdutl snapshot restore". Restore the
// same backup for every member (same RestoreCluster and
// RestoreClusterToken, each with its RestoreMember), then Open each dir
// with its WithID, WithClusterToken and a transport at its address, and
// no WithBootstrap: the members elect a leader and serve the backed-up
// state, at its revision, with its leases (their remaining TTLs start
// again from when the new leader takes over, as after a leader change).
//
// The dir's raft log starts with a snapshot of the backed-up state at the
// backup's raft index, whose configuration is the new members; the log of
// the old cluster and its membership are not carried over.
//
// dir must be absent or empty (ErrDataDirNotEmpty); so must the WAL dir
// of RestoreWALDir. The whole backup is
// read and checked before anything is written: one that is not intact is
// ErrCorruptBackup, and on any error dir is left as it was. Restore holds
// the backed-up state in memory while it runs.
func Restore(backup io.Reader, dir string, opts ...RestoreOption) (*BackupStatus, error) {
	var cfg restoreConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := checkEmptyDir(dir); err != nil {
		return nil, err
	}
	if err := cfg.checkWALDir(dir); err != nil {
		return nil, err
	}
	b, err := decodeBackup(backup)
	if err != nil {
		return nil, err
	}
	defer b.state.close()
	status, err := b.status()
	if err != nil {
		return nil, err
	}
	if err := cfg.write(b, dir); err != nil {
		return nil, err
	}
	return status, nil
}

func (c *restoreConfig) check() error {
	switch {
	case c.member == "":
		return invalid("RestoreMember", "required")
	case len(c.members) == 0:
		return invalid("RestoreCluster", "required")
	case c.clusterToken == "":
		return invalid("RestoreClusterToken", "required")
	}
	for _, p := range c.members {
		if p.ID == c.member {
			return nil
		}
	}
	return invalid("RestoreCluster", "member %q is not listed", c.member)
}

// checkEmptyDir refuses a dir that exists and holds anything.
func checkEmptyDir(dir string) error {
	if dir == "" {
		return invalid("Restore", "no data dir")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("kvstore: restore: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("%w: %s holds %s", ErrDataDirNotEmpty, dir, entries[0].Name())
	}
	return nil
}

// write lays the data dir out in a temp dir and moves it into place, so
// that a failure leaves dir as it was: an absent dir is the temp dir
// (made beside it) renamed; an existing, empty one (perhaps a mount point,
// which must stay) gets the temp dir's entries, the temp dir made inside
// it so that the renames stay on its file system.
func (c *restoreConfig) write(b *decodedBackup, dir string) (err error) {
	_, statErr := os.Stat(dir)
	exists := statErr == nil
	parent := filepath.Dir(dir)
	undoWAL := c.claimWALDir()
	if !exists && c.walDirInside(dir) {
		// The WAL dir's files will be in dir before the rest is: make dir
		// now and fill it as an existing one.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("kvstore: restore: %w", err)
		}
		exists = true
		undoWAL = func() { os.RemoveAll(dir) }
	}
	where := parent
	if exists {
		where = dir
	} else if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("kvstore: restore: %w", err)
	}
	tmp, err := os.MkdirTemp(where, ".restoring-")
	if err != nil {
		undoWAL()
		return fmt.Errorf("kvstore: restore: %w", err)
	}
	var moved []string
	defer func() {
		if err != nil {
			for _, path := range moved {
				os.RemoveAll(path)
			}
			os.RemoveAll(tmp)
			undoWAL()
		}
	}()
	if err := c.writeStorage(b, tmp); err != nil {
		return err
	}
	if !exists {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("kvstore: restore: %w", err)
		}
		return syncPath(parent)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("kvstore: restore: %w", err)
	}
	for _, e := range entries {
		to := filepath.Join(dir, e.Name())
		if err := os.Rename(filepath.Join(tmp, e.Name()), to); err != nil {
			return fmt.Errorf("kvstore: restore: %w", err)
		}
		moved = append(moved, to)
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("kvstore: restore: %w", err)
	}
	return syncPath(dir)
}

// writeStorage creates the member's storage in dir holding one raft
// snapshot: the backed-up state, at its index, with the new members.
func (c *restoreConfig) writeStorage(b *decodedBackup, dir string) error {
	st, err := storage.OpenDir(dir, storage.Config{Cluster: c.clusterToken, Node: c.member, LogStore: c.logStore, WALDir: c.walDir,
		SnapshotRetain: 1, Logger: hclog.NewNullLogger()})
	if err != nil {
		return err
	}
	var servers []raft.Server
	for _, p := range c.members {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	index := b.state.appliedIndex()
	// Term 1: the new cluster's first election starts above it.
	sink, err := st.Snaps.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{Servers: servers}, index, legacyPeers{})
	if err != nil {
		return errors.Join(fmt.Errorf("kvstore: restore: %w", err), st.Close())
	}
	snap, err := b.state.Snapshot()
	if err == nil {
		err = snap.(*fsmSnapshot).write(sink)
	}
	if err != nil {
		sink.Cancel()
		return errors.Join(fmt.Errorf("kvstore: restore: %w", err), st.Close())
	}
	if err := sink.Close(); err != nil {
		return errors.Join(fmt.Errorf("kvstore: restore: %w", err), st.Close())
	}
	return st.Close()
}

// syncPath fsyncs a directory, so that a rename in it is durable.
func syncPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("kvstore: restore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("kvstore: restore: %w", err)
	}
	return nil
}

// legacyPeers encodes the snapshot's legacy peer list (raft's protocol
// version 0 field, unused by the versions kvstore speaks) as raft's own
// transports do: the address.
type legacyPeers struct{ raft.Transport }

func (legacyPeers) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte { return []byte(addr) }
