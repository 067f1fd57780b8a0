package kvstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// BenchmarkBackupCapture times the part of Node.Backup during which apply
// waits: fsm.Snapshot's copy of the lease table and O(1) view of the
// store, here of 1M keys of 256 B (-short: 100k) and 1,000 leases. The
// rest of a backup streams from the view while writes go on.
//
//	go test -run '^$' -bench BackupCapture .
func BenchmarkBackupCapture(b *testing.B) {
	keys := 1_000_000
	if testing.Short() {
		keys = 100_000
	}
	f := newFSM(1, 0, watch.Config{})
	b.Cleanup(func() { f.close() })
	for id := range 1000 {
		if _, err := f.leases.Grant(lease.ID(1+id), 60); err != nil {
			b.Fatal(err)
		}
	}
	value := bytes.Repeat([]byte("v"), 256)
	for i := range keys {
		if _, _, err := f.kv.Put(&mvcc.PutRequest{Key: []byte(fmt.Sprintf("key/%08d", i)), Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := f.Snapshot(); err != nil {
			b.Fatal(err)
		}
		// A write after the view pays its copy-on-write.
		if _, _, err := f.kv.Put(&mvcc.PutRequest{Key: []byte("key/00000001"), Value: value}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzReadBackupStatus: any bytes are a backup or ErrCorruptBackup, never
// a panic; one that reads restores and describes the same state again.
func FuzzReadBackupStatus(f *testing.F) {
	state := newFSM(1, 0, watch.Config{})
	defer state.close()
	if _, err := state.leases.Grant(7, 60); err != nil {
		f.Fatal(err)
	}
	for i := range 5 {
		if _, _, err := state.kv.Put(&mvcc.PutRequest{Key: []byte(fmt.Sprint("k", i%3)), Value: []byte(fmt.Sprint(i))}); err != nil {
			f.Fatal(err)
		}
	}
	state.applied.set(9)
	snap, err := state.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	fs := snap.(*fsmSnapshot)
	info := &BackupInfo{Revision: fs.kv.Revision(), Index: 9, ClusterToken: "t", Member: "a", Members: []Peer{{ID: "a", Address: "a"}}}
	var seed bytes.Buffer
	if err := writeBackup(context.Background(), &seed, info, fs); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.Bytes())
	f.Add(seed.Bytes()[:seed.Len()/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		status, err := ReadBackupStatus(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorruptBackup) {
				t.Fatalf("error %v is not ErrCorruptBackup", err)
			}
			return
		}
		if status.TotalSize != int64(len(data)) {
			t.Fatalf("status %+v of %d bytes", status, len(data))
		}
	})
}
