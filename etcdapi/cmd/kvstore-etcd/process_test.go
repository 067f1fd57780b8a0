package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kvstore/kvstore/etcdapi/internal/etcdctltest"
)

// The tests in this file run the real binary, built into a temporary dir,
// as separate processes on loopback ports, and drive them with the real
// etcdctl. They are skipped under -short.

// processTimeout bounds every wait for a process.
const processTimeout = 30 * time.Second

// buildServer builds this command into a temporary dir of t.
func buildServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "kvstore-etcd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port nobody listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// member is one kvstore-etcd process of a test cluster.
type member struct {
	t          *testing.T
	bin        string
	name       string
	dataDir    string
	clientURL  string
	peerURL    string
	extraFlags []string
	cmd        *exec.Cmd
	log        *syncBuffer
	exited     chan struct{} // closed once cmd.Wait returned
	waitErr    error
	// httpClient, if set, is the client of waitHealthy (for https URLs).
	httpClient *http.Client
}

func newMember(t *testing.T, bin, name string) *member {
	return &member{t: t, bin: bin, name: name, dataDir: filepath.Join(t.TempDir(), name+".etcd"),
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
}

func (m *member) flags() []string {
	return append([]string{
		"--name=" + m.name, "--data-dir=" + m.dataDir,
		"--listen-client-urls=" + m.clientURL, "--advertise-client-urls=" + m.clientURL,
		"--listen-peer-urls=" + m.peerURL, "--initial-advertise-peer-urls=" + m.peerURL,
		"--initial-cluster-token=test-token", "--log-level=debug",
	}, m.extraFlags...)
}

// start starts the process with its flags and args, and registers its
// shutdown with the test's cleanup.
func (m *member) start(args ...string) {
	m.t.Helper()
	m.log = &syncBuffer{}
	m.cmd = exec.Command(m.bin, append(m.flags(), args...)...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.exited = make(chan struct{})
	cmd, exited := m.cmd, m.exited
	go func() {
		err := cmd.Wait()
		m.waitErr = err
		close(exited)
	}()
	m.t.Cleanup(func() { m.stop(syscall.SIGTERM) })
}

// stop sends sig and waits for the process to exit; it returns the exit
// error (nil for status 0).
func (m *member) stop(sig syscall.Signal) error {
	select {
	case <-m.exited:
		return m.waitErr
	default:
	}
	m.cmd.Process.Signal(sig)
	select {
	case <-m.exited:
	case <-time.After(processTimeout):
		m.cmd.Process.Kill()
		<-m.exited
		m.t.Errorf("%s did not exit on %v; log:\n%s", m.name, sig, m.log)
	}
	return m.waitErr
}

// waitHealthy polls the member's /health until it answers true.
func (m *member) waitHealthy() {
	m.t.Helper()
	deadline := time.Now().Add(processTimeout)
	client := m.httpClient
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	for {
		resp, err := client.Get(m.clientURL + "/health")
		if err == nil {
			var body struct{ Health string }
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && body.Health == "true" {
				return
			}
		}
		select {
		case <-m.exited:
			m.t.Fatalf("%s exited (%v); log:\n%s", m.name, m.waitErr, m.log)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s never became healthy (last: %v); log:\n%s", m.name, err, m.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// etcdctl runs the real etcdctl against endpoints.
type etcdctl struct {
	t   *testing.T
	bin string
}

func (c etcdctl) run(endpoints []string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, append([]string{"--endpoints=" + strings.Join(endpoints, ","), "--command-timeout=20s", "--dial-timeout=5s"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c etcdctl) must(endpoints []string, args ...string) string {
	c.t.Helper()
	out, err := c.run(endpoints, args...)
	if err != nil {
		c.t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// listedMember is a member in `etcdctl member list -w json`.
type listedMember struct {
	ID         uint64   `json:"ID"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

func (c etcdctl) members(endpoints []string, flags ...string) []listedMember {
	c.t.Helper()
	var list struct{ Members []listedMember }
	if err := json.Unmarshal([]byte(c.must(endpoints, append(flags, "member", "list", "-w", "json")...)), &list); err != nil {
		c.t.Fatal(err)
	}
	return list.Members
}

func endpointsOf(members ...*member) []string {
	var out []string
	for _, m := range members {
		out = append(out, m.clientURL)
	}
	return out
}

func initialClusterFlag(members ...*member) string {
	var parts []string
	for _, m := range members {
		parts = append(parts, m.name+"="+m.peerURL)
	}
	return strings.Join(parts, ",")
}

// A three-member cluster of processes, driven by etcdctl: writes and
// reads, names and client URLs in member list, a fourth member added with
// member add and started with --initial-cluster-state existing, a member
// killed (the others keep serving) and restarted (it catches up), member
// remove (the removed member exits), a learner added with member add
// --learner and promoted with member promote once it has caught up (and
// not before), and a graceful stop on SIGTERM.
func TestClusterOfProcesses(t *testing.T) {
	bin := buildServer(t)
	ctl := etcdctl{t: t, bin: etcdctltest.Build(t)}
	ms := []*member{newMember(t, bin, "infra1"), newMember(t, bin, "infra2"), newMember(t, bin, "infra3")}
	for _, m := range ms {
		m.start("--initial-cluster=" + initialClusterFlag(ms...))
	}
	for _, m := range ms {
		m.waitHealthy()
	}
	all := endpointsOf(ms...)
	ctl.must(all, "put", "greeting", "hello")
	if out := ctl.must(endpointsOf(ms[2]), "get", "greeting", "--print-value-only"); out != "hello\n" {
		t.Fatalf("get: %q", out)
	}
	// Each member publishes its name and client URLs soon after it
	// starts; every member lists them all.
	for _, m := range ms {
		var listed []listedMember
		waitFor(t, "every member's name and client URLs on "+m.name, func() bool {
			listed = ctl.members(endpointsOf(m))
			return listsAll(listed, ms)
		})
	}

	// A fourth member: added, listed unstarted, then started.
	m4 := newMember(t, bin, "infra4")
	out := ctl.must(all, "member", "add", m4.name, "--peer-urls="+m4.peerURL)
	if !strings.Contains(out, `ETCD_INITIAL_CLUSTER_STATE="existing"`) {
		t.Fatalf("member add: %s", out)
	}
	if list := ctl.must(all, "member", "list"); !strings.Contains(list, "unstarted") {
		t.Errorf("the added member is not listed unstarted:\n%s", list)
	}
	m4.start("--initial-cluster-state=existing")
	m4.waitHealthy()
	if out := ctl.must(endpointsOf(m4), "get", "greeting", "--print-value-only"); out != "hello\n" {
		t.Fatalf("get from the added member: %q", out)
	}
	ms = append(ms, m4)
	waitFor(t, "infra4 listed started", func() bool { return listsAll(ctl.members(all), ms) })

	// member update: infra1 also answers at localhost, so the leader
	// records that URL.
	var infra1 uint64
	for _, l := range ctl.members(all) {
		if l.Name == "infra1" {
			infra1 = l.ID
		}
	}
	moved := strings.Replace(ms[0].peerURL, "127.0.0.1", "localhost", 1)
	ctl.must(all, "member", "update", fmt.Sprintf("%x", infra1), "--peer-urls="+moved)
	waitFor(t, "infra1's new peer URL", func() bool {
		for _, l := range ctl.members(endpointsOf(ms[2])) {
			if l.ID == infra1 {
				return len(l.PeerURLs) == 1 && l.PeerURLs[0] == moved
			}
		}
		return false
	})
	ms[0].peerURL = moved
	// An URL nobody answers at as infra1 is refused, and nothing changes.
	if out, err := ctl.run(all, "member", "update", fmt.Sprintf("%x", infra1), fmt.Sprintf("--peer-urls=http://127.0.0.1:%d", freePort(t))); err == nil {
		t.Errorf("member update to a dead URL succeeded: %s", out)
	}

	// SIGKILL one member: the others keep serving; restarted, it catches up.
	victim := ms[1]
	if err := victim.stop(syscall.SIGKILL); err == nil {
		t.Fatal("a killed member exited with status 0")
	}
	others := endpointsOf(ms[0], ms[2], ms[3])
	ctl.must(others, "put", "after-kill", "still-serving")
	victim.start() // its data dir remembers the cluster
	victim.waitHealthy()
	waitFor(t, "the restarted member to catch up", func() bool {
		out, err := ctl.run(endpointsOf(victim), "get", "after-kill", "--print-value-only", "--consistency=s")
		return err == nil && out == "still-serving\n"
	})

	// member remove: infra4 leaves, and once told of its removal it exits
	// by itself, saying why.
	var infra4 uint64
	for _, l := range ctl.members(others) {
		if l.Name == "infra4" {
			infra4 = l.ID
		}
	}
	if out := ctl.must(others, "member", "remove", fmt.Sprintf("%x", infra4)); !strings.Contains(out, fmt.Sprintf("Member %16x removed from cluster", infra4)) {
		t.Fatalf("member remove: %s", out)
	}
	select {
	case <-m4.exited:
	case <-time.After(processTimeout):
		t.Fatalf("infra4 still runs after its removal; log:\n%s", m4.log)
	}
	if !strings.Contains(m4.log.String(), "this member was removed from the cluster") {
		t.Errorf("infra4 did not say it was removed; log:\n%s", m4.log)
	}
	ms = ms[:3]
	all = endpointsOf(ms...)
	waitFor(t, "infra4 gone from the member list", func() bool { return listsAll(ctl.members(all), ms) })

	// A learner: member add --learner, whose promotion is refused until
	// it has started and caught up.
	m5 := newMember(t, bin, "infra5")
	out = ctl.must(all, "member", "add", m5.name, "--learner", "--peer-urls="+m5.peerURL)
	m := regexp.MustCompile(`Member +([0-9a-f]+) added as learner to cluster`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("member add --learner: %s", out)
	}
	infra5, err := strconv.ParseUint(m[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ctl.run(all, "member", "promote", fmt.Sprintf("%x", infra5)); err == nil || !strings.Contains(out, "can only promote a learner member which is in sync with leader") {
		t.Errorf("member promote of a learner not started: %v\n%s", err, out)
	}
	m5.start("--initial-cluster-state=existing")
	m5.waitHealthy()
	waitFor(t, "infra5 promoted", func() bool {
		out, err := ctl.run(all, "member", "promote", fmt.Sprintf("%x", infra5))
		return err == nil && strings.Contains(out, fmt.Sprintf("Member %16x promoted in cluster", infra5))
	})
	ms = append(ms, m5)
	waitFor(t, "infra5 listed as a voter", func() bool {
		listed := ctl.members(all)
		for _, l := range listed {
			if l.IsLearner {
				return false
			}
		}
		return listsAll(listed, ms)
	})

	// SIGTERM: a graceful stop, status 0.
	for _, m := range ms {
		if err := m.stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s after SIGTERM: %v; log:\n%s", m.name, err, m.log)
		}
		if !strings.Contains(m.log.String(), `"msg":"member closed"`) {
			t.Errorf("%s did not log its shutdown", m.name)
		}
	}
}

// A member configured by an etcd YAML config file (with keys kvstore-etcd
// ignores, and a bare-number retention) serves as one given the same
// settings as flags.
func TestConfigFileProcess(t *testing.T) {
	bin := buildServer(t)
	ctl := etcdctl{t: t, bin: etcdctltest.Build(t)}
	m := newMember(t, bin, "from-file")
	file := filepath.Join(t.TempDir(), "etcd.conf.yml")
	logFile := filepath.Join(t.TempDir(), "member.log")
	yaml := fmt.Sprintf(`# etcd's sample keys
name: 'from-file'
data-dir: %s
wal-dir:
snapshot-count: 10000
max-wals: 5
heartbeat-interval: 100
election-timeout: 1000
max-request-bytes: 1024
quota-backend-bytes: 0
listen-peer-urls: %s
listen-client-urls: %s
initial-advertise-peer-urls: %s
advertise-client-urls: %s
initial-cluster: from-file=%s
initial-cluster-token: 'file-token'
initial-cluster-state: 'new'
client-transport-security:
  cert-file:
  client-cert-auth: false
peer-transport-security:
  auto-tls: false
auto-compaction-mode: periodic
auto-compaction-retention: 1
log-level: info
logger: zap
log-outputs: [stderr, %s]
`, m.dataDir, m.peerURL, m.clientURL, m.peerURL, m.clientURL, m.peerURL, logFile)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(bin, "--config-file="+file)
	m.log = &syncBuffer{}
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.exited = make(chan struct{})
	go func() { m.waitErr = m.cmd.Wait(); close(m.exited) }()
	t.Cleanup(func() { m.stop(syscall.SIGTERM) })
	m.waitHealthy()
	ctl.must(endpointsOf(m), "put", "k", "v")
	listed := ctl.members(endpointsOf(m))
	if len(listed) != 1 || listed[0].Name != "from-file" || listed[0].ClientURLs[0] != m.clientURL {
		t.Fatalf("member list: %+v", listed)
	}
	// The HTTP endpoints on the client URL, beside gRPC.
	for path, want := range map[string]string{
		"/metrics": "etcd_server_proposals_pending", "/livez": "ok\n", "/readyz?verbose": "[+]linearizable_read ok",
		"/health": `{"health":"true","reason":""}`, "/version": `"etcdcluster":"3.6.0"`,
	} {
		resp, err := http.Get(m.clientURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s %q, want 200 with %q", path, resp.Status, body, want)
		}
	}
	// max-request-bytes: a put larger is refused with etcd's error.
	if out, err := ctl.run(endpointsOf(m), "put", "big", strings.Repeat("v", 2048)); err == nil || !strings.Contains(out, "etcdserver: request is too large") {
		t.Errorf("a put over max-request-bytes: %v\n%s", err, out)
	}
	if !strings.Contains(m.log.String(), "max-wals") {
		t.Errorf("the ignored keys were not named in a warning; log:\n%s", m.log)
	}
	if err := m.stop(syscall.SIGTERM); err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
	// log-outputs: the same lines in the file as on stderr.
	if logged, err := os.ReadFile(logFile); err != nil || string(logged) != m.log.String() {
		t.Errorf("the log file (%v) differs from stderr:\n%s\nstderr:\n%s", err, logged, m.log)
	}

	// The binary itself exits 2 on a bad flag, naming it.
	out, err := exec.Command(bin, "--no-such-flag").CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "no-such-flag") {
		t.Errorf("a bad flag: %v\n%s", err, out)
	}
}

// listsAll reports whether listed is ms, each with its name, peer URL and
// client URL.
func listsAll(listed []listedMember, ms []*member) bool {
	if len(listed) != len(ms) {
		return false
	}
	for _, m := range ms {
		found := false
		for _, l := range listed {
			found = found || l.Name == m.name && len(l.ClientURLs) == 1 && l.ClientURLs[0] == m.clientURL &&
				len(l.PeerURLs) == 1 && l.PeerURLs[0] == m.peerURL && !l.IsLearner
		}
		if !found {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds, within processTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(processTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
