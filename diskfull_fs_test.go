package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// TestDiskFullOnRealFilesystem fills a real, small filesystem (a tmpfs the
// caller mounts, e.g. `mount -t tmpfs -o size=100m tmpfs /mnt/small`, then
// KVSTORE_SMALL_FS=/mnt/small) with a one-member cluster on each on-disk log
// store: writes fail with ErrNoSpace, never anything vaguer; once space is
// freed the member serves writes again, by itself on raft-boltdb, after a
// restart on raft-wal (diskspace.go says why), and after a restart every
// acknowledged write is there. Skipped unless KVSTORE_SMALL_FS is set.
func TestDiskFullOnRealFilesystem(t *testing.T) {
	root := os.Getenv("KVSTORE_SMALL_FS")
	if root == "" {
		t.Skip("set KVSTORE_SMALL_FS to a small filesystem to fill (see the doc comment)")
	}
	for _, kind := range []kvstore.LogStore{kvstore.LogStoreWAL, kvstore.LogStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dir, err := os.MkdirTemp(root, "kvstore-diskfull-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			// Room the test gives back once the disk is full.
			filler := filepath.Join(root, filepath.Base(dir)+".filler")
			if err := os.WriteFile(filler, make([]byte, 24<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(filler) })
			open := func() *kvstore.Node {
				t.Helper()
				tr, err := transport.NewNetwork().Join("n1")
				if err != nil {
					t.Fatal(err)
				}
				n, err := kvstore.Open(filepath.Join(dir, "n1"), kvstore.WithID("n1"), kvstore.WithTransport(tr),
					kvstore.WithLogStore(kind), kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}),
					kvstore.WithSnapshots(1<<40, time.Hour, 2))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := n.WaitLeader(context.Background()); err != nil {
					t.Fatal(err)
				}
				return n
			}
			n := open()
			value := make([]byte, 256<<10)
			acked := 0
			for ; ; acked++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := n.Put(ctx, []byte(fmt.Sprintf("k%05d", acked)), value)
				cancel()
				if err == nil {
					continue
				}
				if !errors.Is(err, kvstore.ErrNoSpace) {
					t.Fatalf("put %d on a filling disk: %v, want ErrNoSpace", acked, err)
				}
				t.Logf("%d writes acknowledged, then: %v", acked, err)
				break
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if kind == kvstore.LogStoreWAL {
				// raft-wal refuses appends until it is reopened (diskspace.go):
				// the member says so, and serves again after a restart.
				if _, err := n.Put(context.Background(), []byte("after"), []byte("freed")); !errors.Is(err, kvstore.ErrNoSpace) || !strings.Contains(err.Error(), "restart") {
					t.Fatalf("put on a wedged raft-wal after space was freed: %v, want ErrNoSpace asking for a restart", err)
				}
				if err := n.Close(); err != nil {
					t.Fatal(err)
				}
				n = open()
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := n.Put(ctx, []byte("after"), []byte("freed"))
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still failing 30 s after space was freed: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			n = open()
			defer n.Close()
			resp, err := n.Get(context.Background(), []byte("k"), kvstore.WithPrefix(), kvstore.WithCountOnly())
			if err != nil || resp.Count != int64(acked) {
				t.Fatalf("after restart: %d of %d acknowledged writes (%v)", resp.Count, acked, err)
			}
		})
	}
}
