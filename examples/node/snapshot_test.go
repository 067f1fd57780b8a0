package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/transport"
)

// TestSnapshotSaveStatusRestore walks the README's path: save a backup of a
// running member over its API, show its status, lose the member, restore
// the backup into the data dir of a new cluster, and serve it. A restore
// into the used dir, and a damaged file, are refused.
func TestSnapshotSaveStatusRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		root := t.TempDir()
		p := startProgramWith(t, transport.NewNetwork(), []string{"--id", "n1", "--data-dir", filepath.Join(root, "n1"), "--listen", "10.0.0.1:2380",
			"--initial-cluster", "n1=10.0.0.1:2380"}, join)
		<-p.ready
		s := p.client()
		eventually(t, time.Minute, "the node to be healthy", func() bool {
			ok, _ := s.healthy()
			return ok
		})
		for i := range 20 {
			s.call("PUT", fmt.Sprint("/v1/kv/k", i), fmt.Sprint("v", i), http.StatusOK, nil)
		}
		var hash hashResponse
		s.call("GET", "/v1/hash", "", http.StatusOK, &hash)

		file := filepath.Join(root, "backup.db")
		var out strings.Builder
		if err := saveSnapshot(ctx, s.client, "http://node", file, &out, &out); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("hash %d, 20 keys", hash.Hash); !strings.Contains(out.String(), want) {
			t.Fatalf("save printed %q, want %q in it", out.String(), want)
		}
		command := func(args ...string) (int, string) {
			var stdout, stderr strings.Builder
			code := run(ctx, append([]string{"snapshot"}, args...), &stderr, wiring{stdout: &stdout})
			return code, stdout.String() + stderr.String()
		}
		if code, msg := command("status", file); code != 0 || !strings.Contains(msg, fmt.Sprintf("hash %d,", hash.Hash)) {
			t.Fatalf("status: %d %s", code, msg)
		}
		p.cancel() // the member is lost
		p.wait()

		dir := filepath.Join(root, "m1")
		restore := []string{"restore", file, "--id", "m1", "--data-dir", dir, "--initial-cluster", "m1=10.0.0.9:2380", "--cluster-token", "restored"}
		if code, msg := command(restore...); code != 0 {
			t.Fatalf("restore: %d %s", code, msg)
		}
		if code, msg := command(restore...); code != 1 || !strings.Contains(msg, "not empty") {
			t.Fatalf("restore into the used dir: %d %s", code, msg)
		}
		if code, msg := command("restore", file, "--id", "m1", "--data-dir", dir); code != 2 {
			t.Fatalf("restore without --initial-cluster: %d %s", code, msg)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		damaged := filepath.Join(root, "damaged.db")
		if err := os.WriteFile(damaged, data[:len(data)-10], 0o600); err != nil {
			t.Fatal(err)
		}
		if code, msg := command("status", damaged); code != 1 || !strings.Contains(msg, "corrupt backup") {
			t.Fatalf("status of a damaged backup: %d %s", code, msg)
		}

		q := startProgramWith(t, transport.NewNetwork(), []string{"--id", "m1", "--data-dir", dir, "--listen", "10.0.0.9:2380", "--cluster-token", "restored"}, join)
		<-q.ready
		r := q.client()
		eventually(t, time.Minute, "the restored node to be healthy", func() bool {
			ok, _ := r.healthy()
			return ok
		})
		var restored hashResponse
		r.call("GET", "/v1/hash", "", http.StatusOK, &restored)
		if restored.Hash != hash.Hash {
			t.Fatalf("restored hash %08x, want %08x", restored.Hash, hash.Hash)
		}
		var get getResponse
		r.call("GET", "/v1/kv/k7", "", http.StatusOK, &get)
		if len(get.KVs) != 1 || str(get.KVs[0].Value) != "v7" {
			t.Fatalf("get after restore: %+v", get)
		}
	})
}
