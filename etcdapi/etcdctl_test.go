package etcdapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/etcdapi/internal/etcdctltest"
	"github.com/kvstore/kvstore/kvtest"
)

// buildEtcdctl builds etcdctl (etcdctltest.Build).
func buildEtcdctl(t *testing.T) string { return etcdctltest.Build(t) }

// ctlRunner runs the real etcdctl against a cluster's endpoints.
type ctlRunner struct {
	t         *testing.T
	bin       string
	endpoints string // the --endpoints flag
}

// must runs etcdctl with stdin and args and returns its output; it fails
// the test if etcdctl fails.
func (r ctlRunner) must(stdin string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(r.bin, append([]string{r.endpoints, "--command-timeout=30s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// refused fails the test unless etcdctl with args fails with want in its
// error output.
func (r ctlRunner) refused(want string, args ...string) {
	r.t.Helper()
	cmd := exec.Command(r.bin, append([]string{r.endpoints}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), want) {
		r.t.Errorf("etcdctl %s: %v %q, want %q", strings.Join(args, " "), err, stderr.String(), want)
	}
}

func TestEtcdctl(t *testing.T) {
	etcdctl := buildEtcdctl(t)
	c := newCluster(t, 3)
	endpoints := "--endpoints=" + strings.Join(c.endpoints, ",")
	r := ctlRunner{t: t, bin: etcdctl, endpoints: endpoints}
	ctl := r.must
	expect := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}

	// A watch in its own process, from the first revision, so that it
	// sees every change however late it starts.
	watch := exec.Command(etcdctl, endpoints, "watch", "--prefix", "--rev=1", "app/")
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	lines := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()

	expect(ctl("", "put", "app/a", "1"), "OK\n")
	expect(ctl("", "put", "app/b", "2"), "OK\n")
	expect(ctl("", "put", "other", "3"), "OK\n")
	expect(ctl("", "get", "--prefix", "app/"), "app/a\n1\napp/b\n2\n")
	expect(ctl("", "get", "--prefix", "--keys-only", "app/"), "app/a\n\napp/b\n\n")
	expect(ctl("", "get", "--rev=2", "app/a"), "app/a\n1\n")
	expect(ctl("", "get", "--prefix", "--sort-by=KEY", "--order=DESCEND", "--limit=1", "app/"), "app/b\n2\n")
	if out := ctl("", "get", "--from-key", "--count-only", "--write-out=fields", "a"); !strings.Contains(out, `"Count" : 3`) {
		t.Errorf("count only: %q", out)
	}
	expect(ctl("", "del", "--prev-kv", "app/b"), "1\napp/b\n2\n")
	expect(ctl("value(\"app/a\") = \"1\"\n\nput app/a 10\n\nput app/a 20\n\n", "txn"), "SUCCESS\n\nOK\n")
	expect(ctl("", "get", "app/a", "--print-value-only"), "10\n")

	// The watch saw every change of its prefix, in order.
	var seen []string
	deadline := time.After(30 * time.Second)
	for len(seen) < 12 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended; saw %q", seen)
			}
			seen = append(seen, l)
		case <-deadline:
			t.Fatalf("watch saw only %q", seen)
		}
	}
	expect(strings.Join(seen, " "), "PUT app/a 1 PUT app/b 2 DELETE app/b  PUT app/a 10")

	grant := ctl("", "lease", "grant", "60")
	m := regexp.MustCompile(`lease ([0-9a-f]+) granted with TTL\(60s\)`).FindStringSubmatch(grant)
	if m == nil {
		t.Fatalf("lease grant: %q", grant)
	}
	expect(ctl("", "put", "--lease="+m[1], "leased", "v"), "OK\n")
	if out := ctl("", "lease", "timetolive", "--keys", m[1]); !strings.Contains(out, "granted with TTL(60s)") || !strings.Contains(out, "attached keys([leased])") {
		t.Errorf("lease timetolive: %q", out)
	}
	if out := ctl("", "lease", "keep-alive", "--once", m[1]); !strings.Contains(out, "keepalived with TTL(60)") {
		t.Errorf("lease keep-alive: %q", out)
	}
	if out := ctl("", "lease", "list"); !strings.Contains(out, m[1]) {
		t.Errorf("lease list: %q", out)
	}
	if out := ctl("", "lease", "revoke", m[1]); !strings.Contains(out, "revoked") {
		t.Errorf("lease revoke: %q", out)
	}
	expect(ctl("", "get", "leased"), "")

	if out := ctl("", "member", "list"); strings.Count(out, "started") != 3 || !strings.Contains(out, "n1") || !strings.Contains(out, "n3") {
		t.Errorf("member list: %q", out)
	}
	status := ctl("", "endpoint", "status", "-w", "table")
	if strings.Count(status, "127.0.0.1") != 3 || strings.Count(status, "true") != 1 {
		t.Errorf("endpoint status: %s", status)
	}
	if out := ctl("", "endpoint", "hashkv", "-w", "table"); strings.Count(out, "127.0.0.1") != 3 {
		t.Errorf("endpoint hashkv: %s", out)
	}
	if out := ctl("", "endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Errorf("endpoint health: %q", out)
	}
	expect(ctl("", "alarm", "list"), "")
	if out := ctl("", "defrag"); strings.Count(out, "Finished defragmenting") != 3 {
		t.Errorf("defrag: %q", out)
	}
	target := c.Followers()[0].ID()
	if out := ctl("", "move-leader", fmt.Sprintf("%x", etcdapi.MemberID(target))); !strings.Contains(out, "Leadership transferred") {
		t.Errorf("move-leader: %q", out)
	}
	if id := c.WaitLeader().ID(); id != target {
		t.Errorf("leader %s after move-leader, want %s", id, target)
	}
	if out := ctl("", "compaction", "3"); !strings.Contains(out, "compacted revision 3") {
		t.Errorf("compaction: %q", out)
	}
	cmd := exec.Command(etcdctl, endpoints, "get", "--rev=2", "app/a")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "required revision has been compacted") {
		t.Errorf("get below the compaction: %v %q", err, stderr.String())
	}

	// Auth, as an operator sets it up: auth enable adds the root role
	// and grants it to root itself when it is missing.
	contains := func(got, want string) {
		t.Helper()
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
	contains(ctl("", "user", "add", "root:rootpw"), "User root created")
	contains(ctl("", "role", "add", "reader"), "Role reader created")
	contains(ctl("", "role", "grant-permission", "reader", "read", "app/", "--prefix"), "Role reader updated")
	contains(ctl("", "user", "add", "alice:alicepw"), "User alice created")
	contains(ctl("", "user", "grant-role", "alice", "reader"), "Role reader is granted to user alice")
	contains(ctl("", "auth", "enable"), "Authentication Enabled")
	c.WaitApplied() // enabling takes effect on each member as it applies it
	expect(ctl("", "--user=alice:alicepw", "get", "app/a"), "app/a\n10\n")
	contains(ctl("", "--user=root:rootpw", "role", "get", "reader"), "[app/, app0)")
	contains(ctl("", "--user=root:rootpw", "user", "list"), "alice")
	refused := r.refused
	refused("permission denied", "--user=alice:alicepw", "get", "other")
	refused("permission denied", "--user=alice:alicepw", "put", "app/a", "x")
	refused("user name is empty", "get", "app/a")
	refused("authentication failed", "--user=alice:wrong", "get", "app/a")
	contains(ctl("", "--user=root:rootpw", "auth", "disable"), "Authentication Disabled")

	// snapshot save, from one member (etcdctl asks for one), writes a
	// file kvstore reads and restores.
	file := filepath.Join(t.TempDir(), "snapshot.db")
	out, err := exec.Command(etcdctl, "--endpoints="+c.endpoints[0], "snapshot", "save", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Snapshot saved at "+file) {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kvstore.ReadBackupStatus(bytes.NewReader(saved))
	if err != nil || st.Keys != 2 || st.Member != c.ID(0) {
		t.Errorf("the saved snapshot: %+v %v, want 2 keys, taken by %s", st, err, c.ID(0))
	}
	if _, err := kvstore.Restore(bytes.NewReader(saved), filepath.Join(t.TempDir(), "restored"), kvstore.RestoreMember("r"),
		kvstore.RestoreCluster(kvstore.Peer{ID: "r", Address: "r"}), kvstore.RestoreClusterToken("r")); err != nil {
		t.Errorf("restore the saved snapshot: %v", err)
	}

	// downgrade is refused with a clear error.
	out, err = exec.Command(etcdctl, endpoints, "downgrade", "validate", "3.5").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "code = Unimplemented desc = etcdserver: downgrade is not supported") {
		t.Errorf("downgrade validate: %v %q", err, out)
	}
}

// alarm list and alarm disarm, as an operator clears a NOSPACE alarm:
// writes past the quota are refused and raise the alarm, which alarm list
// shows; once deletes and a compaction freed the space, alarm disarm
// clears it and writes are accepted again.
func TestEtcdctlAlarm(t *testing.T) {
	c := newCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithQuotaBytes(8<<10)))
	r := ctlRunner{t: t, bin: buildEtcdctl(t), endpoints: "--endpoints=" + c.endpoints[0]}
	value := strings.Repeat("v", 1024)
	full := false
	for i := 0; i < 16 && !full; i++ {
		cmd := exec.Command(r.bin, r.endpoints, "put", fmt.Sprintf("fill/%02d", i), value)
		out, err := cmd.CombinedOutput()
		switch {
		case err == nil:
		case strings.Contains(string(out), "database space exceeded"):
			full = true
		default:
			t.Fatalf("put fill/%02d: %v\n%s", i, err, out)
		}
	}
	if !full {
		t.Fatal("16 puts of 1 KiB were all accepted under a quota of 8 KiB")
	}
	alarm := fmt.Sprintf("memberID:%d alarm:NOSPACE \n", etcdapi.MemberID(c.ID(0)))
	if out := r.must("", "alarm", "list"); out != alarm {
		t.Fatalf("alarm list: %q, want %q", out, alarm)
	}
	r.refused("database space exceeded", "put", "k", "v")

	r.must("", "del", "--prefix", "fill/")
	var status struct{ Header struct{ Revision int64 } }
	if err := json.Unmarshal([]byte(r.must("", "get", "none", "-w", "json")), &status); err != nil {
		t.Fatal(err)
	}
	r.must("", "compaction", "--physical", fmt.Sprint(status.Header.Revision))
	if out := r.must("", "alarm", "disarm"); out != alarm {
		t.Errorf("alarm disarm: %q, want %q", out, alarm)
	}
	if out := r.must("", "alarm", "list"); out != "" {
		t.Errorf("alarm list after the disarm: %q", out)
	}
	if out := r.must("", "put", "k", "v"); out != "OK\n" {
		t.Errorf("put after the disarm: %q", out)
	}
}
