package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProcessesWALDir: --wal-dir reaches kvstore with either --log-store:
// the member's raft log is in the WAL dir and not in the data dir, it
// restarts from both with its data, and a restart with another --wal-dir
// exits 1 naming both dirs, changing nothing.
func TestProcessesWALDir(t *testing.T) {
	bin := nodeBinary(t)
	for _, store := range []string{"wal", "bolt"} {
		t.Run(store, func(t *testing.T) {
			walDir := filepath.Join(t.TempDir(), "fast")
			p := newProc(t, bin, "n1", "--log-store", store, "--wal-dir", walDir)
			p.start("--initial-cluster", "n1="+p.peerAddr())
			eventuallyProc(t, "n1 to be healthy", p.healthy)
			if code := p.do("PUT", "/v1/kv/k", "v", nil); code != http.StatusOK {
				t.Fatalf("put: status %d", code)
			}
			p.kill()

			logFile := map[string]string{"wal": "wal", "bolt": "raft.db"}[store]
			if _, err := os.Stat(filepath.Join(walDir, logFile)); err != nil {
				t.Fatalf("--wal-dir %s --log-store %s: %v", walDir, store, err)
			}
			if _, err := os.Stat(filepath.Join(p.dir, "raft")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the data dir holds a raft log folder with --wal-dir (%v)", err)
			}

			other := filepath.Join(t.TempDir(), "other")
			p.extra = []string{"--log-store", store, "--wal-dir", other}
			p.start()
			if code := p.wait(); code != 1 {
				t.Fatalf("restart with another --wal-dir: exit %d; log:\n%s", code, p.logText())
			}
			for _, want := range []string{"WAL dir mismatch", walDir, other} {
				if !strings.Contains(p.logText(), want) {
					t.Errorf("the refusal does not mention %q:\n%s", want, p.logText())
				}
			}
			if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused start created the other WAL dir (%v)", err)
			}

			p.extra = []string{"--log-store", store, "--wal-dir", walDir}
			p.start()
			eventuallyProc(t, "n1 to be healthy again", p.healthy)
			var got getResponse
			if code := p.do("GET", "/v1/kv/k", "", &got); code != http.StatusOK || len(got.KVs) != 1 || str(got.KVs[0].Value) != "v" {
				t.Fatalf("get after restart: status %d, %+v", code, got)
			}
		})
	}
}
