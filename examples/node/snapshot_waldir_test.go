package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// TestSnapshotRestoreWALDir: snapshot restore --wal-dir puts the restored
// member's raft log in the WAL dir, says to start it with that --wal-dir,
// and the member started so serves the backup; a WAL dir in use is refused.
func TestSnapshotRestoreWALDir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		root := t.TempDir()
		var backup bytes.Buffer
		c := kvtest.NewCluster(t, 1)
		if _, err := c.WaitLeader().Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitLeader().Backup(ctx, &backup); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(root, "backup.db")
		if err := os.WriteFile(file, backup.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		command := func(args ...string) (int, string) {
			var stdout, stderr strings.Builder
			code := run(ctx, append([]string{"snapshot"}, args...), &stderr, wiring{stdout: &stdout})
			return code, stdout.String() + stderr.String()
		}
		dir, walDir := filepath.Join(root, "m1"), filepath.Join(root, "fast", "m1")
		restore := []string{"restore", file, "--id", "m1", "--data-dir", dir, "--initial-cluster", "m1=10.0.0.9:2380", "--cluster-token", "restored", "--wal-dir", walDir}
		code, msg := command(restore...)
		if code != 0 || !strings.Contains(msg, "--wal-dir "+walDir) {
			t.Fatalf("restore --wal-dir: %d %s", code, msg)
		}
		if _, err := os.Stat(filepath.Join(walDir, "wal")); err != nil {
			t.Fatalf("no raft log in the WAL dir: %v", err)
		}
		other := filepath.Join(root, "m2")
		if code, msg := command("restore", file, "--id", "m1", "--data-dir", other, "--initial-cluster", "m1=10.0.0.9:2380", "--cluster-token", "restored", "--wal-dir", walDir); code != 1 || !strings.Contains(msg, "not empty") {
			t.Fatalf("restore with a WAL dir in use: %d %s", code, msg)
		}

		q := startProgramWith(t, transport.NewNetwork(), []string{"--id", "m1", "--data-dir", dir, "--wal-dir", walDir, "--listen", "10.0.0.9:2380", "--cluster-token", "restored"}, join)
		<-q.ready
		r := q.client()
		eventually(t, time.Minute, "the restored node to be healthy", func() bool {
			ok, _ := r.healthy()
			return ok
		})
		var get getResponse
		r.call("GET", "/v1/kv/k", "", http.StatusOK, &get)
		if len(get.KVs) != 1 || str(get.KVs[0].Value) != "v" {
			t.Fatalf("get after restore: %+v", get)
		}
	})
}
