package kvstore

import (
	"bytes"
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
