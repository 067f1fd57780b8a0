package kvstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kvstore/kvstore/internal/storage"
)

// RestoreWALDir puts the restored member's raft log in dir instead of its
// data dir, like WithWALDir (etcd's "etcdutl snapshot restore --wal-dir"):
// the data dir records dir, and must then be opened with WithWALDir(dir).
// A relative dir is resolved against the working directory now. dir must
// be absent or empty, as the data dir must (ErrDataDirNotEmpty), and may
// not be the data dir or lie inside its folders, nor the data dir inside
// its own (ErrInvalidOption), WithWALDir's rules; a failed Restore leaves
// it as it was.
func RestoreWALDir(dir string) RestoreOption {
	return func(c *restoreConfig) error {
		if dir == "" {
			return invalid("RestoreWALDir", "empty dir")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return invalid("RestoreWALDir", "%q: %v", dir, err)
		}
		c.walDir = abs
		return nil
	}
}

// checkWALDir checks RestoreWALDir's dir against the data dir dataDir: its
// placement, and that it is absent or empty.
func (c *restoreConfig) checkWALDir(dataDir string) error {
	if c.walDir == "" {
		return nil
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return invalid("Restore", "data dir %q: %v", dataDir, err)
	}
	if err := storage.CheckWALDirPlacement(abs, c.walDir); err != nil {
		return invalid("RestoreWALDir", "%q: %v", c.walDir, err)
	}
	entries, err := os.ReadDir(c.walDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("kvstore: restore: WAL dir: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("%w: the WAL dir %s holds %s", ErrDataDirNotEmpty, c.walDir, entries[0].Name())
	}
	return nil
}

// claimWALDir notes whether the WAL dir exists before Restore writes into
// it, and returns the function that undoes what Restore wrote there: the
// dir removed if Restore created it, else emptied again (it was empty).
func (c *restoreConfig) claimWALDir() (undo func()) {
	if c.walDir == "" {
		return func() {}
	}
	dir := c.walDir
	if _, err := os.Stat(dir); err != nil {
		return func() { os.RemoveAll(dir) }
	}
	return func() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// walDirInside reports whether RestoreWALDir's dir lies inside the data dir
// dataDir.
func (c *restoreConfig) walDirInside(dataDir string) bool {
	abs, err := filepath.Abs(dataDir)
	if c.walDir == "" || err != nil {
		return false
	}
	return strings.HasPrefix(c.walDir, abs+string(filepath.Separator))
}
