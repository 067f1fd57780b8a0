// Package etcdctltest builds etcdctl for the tests of etcdapi and its
// commands.
package etcdctltest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build builds etcdctl, at the version of the etcd API module this module
// requires, from the module proxy into a temporary dir of t, and returns
// its path. It skips t under -short. The go command's build cache makes
// every build after the first quick.
func Build(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds etcdctl from the module proxy")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	version, err := exec.Command(goTool, "list", "-m", "-f", "{{.Version}}", "go.etcd.io/etcd/api/v3").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module etcdctlbuild\n\ngo 1.25.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(goTool, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("get", "go.etcd.io/etcd/etcdctl/v3@"+strings.TrimSpace(string(version)))
	bin := filepath.Join(dir, "etcdctl")
	run("build", "-o", bin, "go.etcd.io/etcd/etcdctl/v3")
	return bin
}
