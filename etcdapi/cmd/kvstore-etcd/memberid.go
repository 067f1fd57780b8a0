package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kvstore/kvstore/etcdapi"
)

// The data dir holds the member's kvstore state in member/ (etcd keeps its
// own in member/ too) and its ID in member-id. The ID is derived once, from
// the member's peer URL and the cluster token (etcdapi.PeerMemberID), when
// the data dir is new, and read back at every restart: the peer URL may
// change later (etcdctl member update, or a restart at a new address),
// the ID may not.

const memberIDFile = "member-id"

// memberDir is where the kvstore node keeps its state.
func memberDir(dataDir string) string { return filepath.Join(dataDir, "member") }

// loadMemberID returns the ID recorded in dataDir, or, if there is none
// (a new member), the one derived from s and records it. fresh reports a
// new member.
func loadMemberID(s settings) (id string, fresh bool, err error) {
	path := filepath.Join(s.dataDir, memberIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id = strings.TrimSpace(string(data))
		if len(id) != 16 || etcdapi.FormatMemberID(etcdapi.MemberID(id)) != id {
			return "", false, fmt.Errorf("%s: %q is not a member ID", path, id)
		}
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, err
	}
	if _, err := os.Stat(memberDir(s.dataDir)); err == nil {
		return "", false, fmt.Errorf("%s holds a member's state but no %s: not a data dir this program wrote", s.dataDir, memberIDFile)
	}
	id = etcdapi.PeerMemberID([]string{s.peerURL}, s.token)
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return "", false, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", false, err
	}
	_, err = f.WriteString(id + "\n")
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(s.dataDir)
	}
	if err != nil {
		return "", false, fmt.Errorf("recording the member ID: %w", err)
	}
	return id, true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
