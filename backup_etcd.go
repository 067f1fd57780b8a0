package kvstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// A backup saved by etcd's client ("etcdctl snapshot save", clientv3's
// snapshot.SaveWithVersion) through the etcdapi module ends in etcd's
// snapshot trailer, after the backup's own CRC-32C:
//
//	zero bytes ([EtcdSnapshotPadding]: fewer than 512), so that the
//	  file's size before the digest is a multiple of 512
//	the SHA-256 of every preceding byte, padding included (32 bytes)
//
// etcd's client refuses a snapshot whose size modulo 512 is not the size
// of a SHA-256 digest (etcd's bolt files are whole pages, to which the
// server appends the digest), hence the padding. ReadBackupStatus and
// Restore accept a backup with or without the trailer; one that has it
// must have it whole: zero padding of the right length and a digest that
// matches, else ErrCorruptBackup.
const etcdSnapshotAlignment = 512

// EtcdSnapshotPadding returns the number of zero bytes that follow a
// backup of size bytes (as Node.Backup wrote it) before etcd's SHA-256
// trailer.
func EtcdSnapshotPadding(size int64) int {
	return int((etcdSnapshotAlignment - size%etcdSnapshotAlignment) % etcdSnapshotAlignment)
}

// readEtcdTrailer reads what follows a backup's checksum: nothing, or
// etcd's trailer, which it checks against the SHA-256 of every byte read
// so far (in.sha).
func (in *backupReader) readEtcdTrailer() error {
	rest, err := io.ReadAll(io.LimitReader(in.r, etcdSnapshotAlignment+sha256.Size))
	if err != nil {
		in.readErr = err
		return err
	}
	if len(rest) == 0 {
		return nil
	}
	switch _, err := in.r.ReadByte(); {
	case err == nil:
		return errors.New("data after the checksum")
	case err != io.EOF:
		in.readErr = err
		return err
	}
	pad := EtcdSnapshotPadding(in.n)
	if len(rest) != pad+sha256.Size {
		return fmt.Errorf("%d bytes after the checksum: not etcd's snapshot trailer (%d bytes of padding and a SHA-256 digest)", len(rest), pad)
	}
	if !bytes.Equal(rest[:pad], make([]byte, pad)) {
		return errors.New("etcd snapshot trailer: padding is not zero")
	}
	in.sha.Write(rest[:pad])
	if got := in.sha.Sum(nil); !bytes.Equal(got, rest[pad:]) {
		return fmt.Errorf("etcd snapshot trailer: SHA-256 mismatch: stored %x, computed %x", rest[pad:], got)
	}
	in.n += int64(len(rest))
	return nil
}
