package kvstore_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kvstore/kvstore"
)

// withEtcdTrailer returns backup followed by etcd's snapshot trailer, as
// etcdapi streams it to "etcdctl snapshot save".
func withEtcdTrailer(backup []byte) []byte {
	out := append(bytes.Clone(backup), make([]byte, kvstore.EtcdSnapshotPadding(int64(len(backup))))...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...)
}

func TestEtcdSnapshotPadding(t *testing.T) {
	for size, want := range map[int64]int{0: 0, 1: 511, 511: 1, 512: 0, 513: 511, 1000: 24} {
		if got := kvstore.EtcdSnapshotPadding(size); got != want {
			t.Errorf("EtcdSnapshotPadding(%d) = %d, want %d", size, got, want)
		}
	}
}

// TestBackupEtcdTrailer: a backup followed by etcd's trailer (zero
// padding to 512 bytes, then the SHA-256 of all before it, which etcd's
// client requires of a snapshot) reads and restores as the bare backup
// does; a damaged trailer is ErrCorruptBackup.
func TestBackupEtcdTrailer(t *testing.T) {
	good := smallBackup(t)
	bare, err := kvstore.ReadBackupStatus(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	etcd := withEtcdTrailer(good)
	if len(etcd)%512 != sha256.Size {
		t.Fatalf("%d bytes with the trailer: etcd's client wants a size of 32 modulo 512", len(etcd))
	}
	st, err := kvstore.ReadBackupStatus(bytes.NewReader(etcd))
	if err != nil {
		t.Fatalf("with etcd's trailer: %v", err)
	}
	if st.Hash != bare.Hash || st.Revision != bare.Revision || st.Keys != bare.Keys || st.TotalSize != int64(len(etcd)) {
		t.Errorf("with etcd's trailer %+v, bare %+v", st, bare)
	}
	restored, err := kvstore.Restore(bytes.NewReader(etcd), filepath.Join(t.TempDir(), "d"), kvstore.RestoreMember("a"),
		kvstore.RestoreCluster(kvstore.Peer{ID: "a", Address: "a"}), kvstore.RestoreClusterToken("t"))
	if err != nil || restored.Hash != bare.Hash {
		t.Fatalf("Restore with etcd's trailer: %+v %v", restored, err)
	}

	pad := kvstore.EtcdSnapshotPadding(int64(len(good)))
	damaged := map[string][]byte{
		"digest flipped":   flip(etcd, len(etcd)-1),
		"padding not zero": flip(etcd, len(good)),
		"no padding":       append(bytes.Clone(good), etcd[len(good)+pad:]...),
		"digest cut":       etcd[:len(etcd)-1],
		"byte after":       append(bytes.Clone(etcd), 0),
		"trailer twice":    append(bytes.Clone(etcd), etcd[len(good):]...),
	}
	if pad == 0 {
		t.Fatalf("the test backup needs padding; it is %d bytes", len(good))
	}
	for name, data := range damaged {
		if _, err := kvstore.ReadBackupStatus(bytes.NewReader(data)); !errors.Is(err, kvstore.ErrCorruptBackup) {
			t.Errorf("%s: %v, want ErrCorruptBackup", name, err)
		}
	}
}

func flip(data []byte, at int) []byte {
	out := bytes.Clone(data)
	out[at] ^= 1
	return out
}
