package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kvstore/kvstore/internal/testcerts"
)

// These tests run real node processes on 127.0.0.1: the binary is built
// once, and every member gets its sockets from the test (inherited with
// --listen-fd and --client-listen-fd), so no port is ever picked twice.
// Waits poll with deadlines; nothing sleeps a fixed time.

// processTimeout bounds every wait on a process.
const processTimeout = 60 * time.Second

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// nodeBinary builds examples/node once per test binary.
func nodeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process tests build and run the node binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kvnode-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "kvnode")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// proc is one member: its sockets, data dir and, while it runs, process.
type proc struct {
	t            *testing.T
	bin, id, dir string
	peer, client *net.TCPListener
	extra        []string
	cmd          *exec.Cmd
	down         atomic.Bool // killed; the test still holds its sockets, so it must not be called
	out          syncBuffer  // the process's stdout and stderr
	exited       chan error
}

func newProc(t *testing.T, bin, id string, extra ...string) *proc {
	t.Helper()
	listen := func() *net.TCPListener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln.(*net.TCPListener)
	}
	return &proc{t: t, bin: bin, id: id, dir: filepath.Join(t.TempDir(), id), peer: listen(), client: listen(), extra: extra}
}

func (p *proc) peerAddr() string { return p.peer.Addr().String() }
func (p *proc) url() string      { return "http://" + p.client.Addr().String() }

// start runs the member with its flags plus args.
func (p *proc) start(args ...string) {
	p.t.Helper()
	peerFile, err := p.peer.File()
	if err != nil {
		p.t.Fatal(err)
	}
	clientFile, err := p.client.File()
	if err != nil {
		p.t.Fatal(err)
	}
	defer peerFile.Close()
	defer clientFile.Close()
	all := append([]string{"--id", p.id, "--data-dir", p.dir,
		"--listen", p.peerAddr(), "--listen-fd", "3",
		"--client-listen", p.client.Addr().String(), "--client-listen-fd", "4"}, p.extra...)
	p.cmd = exec.Command(p.bin, append(all, args...)...)
	p.cmd.ExtraFiles = []*os.File{peerFile, clientFile}
	p.out = syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan error, 1)
	p.down.Store(false)
	cmd := p.cmd
	go func() { p.exited <- cmd.Wait() }()
	p.t.Cleanup(p.kill)
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	p.down.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// wait waits for the process to exit on its own and returns its status.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(processTimeout):
		p.t.Errorf("%s did not exit; log:\n%s", p.id, p.logText())
		return -1
	}
	code := p.cmd.ProcessState.ExitCode()
	p.cmd = nil
	return code
}

func (p *proc) logText() string { return p.out.String() }

var httpClient = &http.Client{Timeout: 5 * time.Second}

// do sends one API request and decodes the JSON answer into out (if not
// nil); it returns the HTTP status, or 0 when the member did not answer.
func (p *proc) do(method, path, body string, out any) int {
	req, err := http.NewRequest(method, p.url()+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			p.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// eventuallyProc polls cond until it holds or processTimeout passes.
func eventuallyProc(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(processTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) healthy() bool { return p.do("GET", "/healthz", "", nil) == http.StatusOK }

func (p *proc) status() statusResponse {
	var st statusResponse
	p.do("GET", "/v1/status", "", &st)
	return st
}

// startProcesses starts the members with one --initial-cluster and waits
// until all are healthy.
func startProcesses(t *testing.T, procs []*proc) {
	t.Helper()
	var peers []string
	for _, p := range procs {
		peers = append(peers, p.id+"="+p.peerAddr())
	}
	for _, p := range procs {
		p.start("--initial-cluster", strings.Join(peers, ","))
	}
	for _, p := range procs {
		eventuallyProc(t, p.id+" to be healthy", p.healthy)
	}
}

func leaderProcess(t *testing.T, procs []*proc) *proc {
	t.Helper()
	var leader *proc
	eventuallyProc(t, "a leader", func() bool {
		for _, p := range procs {
			if p.cmd != nil && p.status().IsLeader {
				leader = p
				return true
			}
		}
		return false
	})
	return leader
}

// TestProcessesFailover runs three member processes, plain and with mutual
// TLS: writes go through each, the leader is killed with SIGKILL while a
// writer runs, a new leader is elected, every acknowledged write survives
// on the others, and the killed member restarts from its data dir and
// catches up.
func TestProcessesFailover(t *testing.T) {
	bin := nodeBinary(t)
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[withTLS], func(t *testing.T) {
			var tlsArgs func(id string) []string
			if withTLS {
				ca, err := testcerts.NewCA("kvstore test CA")
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				tlsArgs = func(id string) []string {
					f, err := ca.WriteFiles(dir, id, id, "127.0.0.1")
					if err != nil {
						t.Fatal(err)
					}
					return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
				}
			}
			var procs []*proc
			for _, id := range []string{"n1", "n2", "n3"} {
				var extra []string
				if tlsArgs != nil {
					extra = tlsArgs(id)
				}
				procs = append(procs, newProc(t, bin, id, extra...))
			}
			startProcesses(t, procs)
			for _, p := range procs {
				if code := p.do("PUT", "/v1/kv/through-"+p.id, "v", nil); code != http.StatusOK {
					t.Fatalf("put through %s: %d\n%s", p.id, code, p.logText())
				}
			}
			if withTLS {
				checkPeerRefusals(t, procs[0])
			}

			leader := leaderProcess(t, procs)
			var survivors []*proc
			for _, p := range procs {
				if p != leader {
					survivors = append(survivors, p)
				}
			}
			// A writer puts through every member in turn; it keeps the keys
			// acknowledged with 200.
			var mu sync.Mutex
			var acked []string
			stop := make(chan struct{})
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					p := procs[i%len(procs)]
					if p.down.Load() {
						continue
					}
					key := fmt.Sprintf("w/%05d", i)
					if p.do("PUT", "/v1/kv/"+key, "v", nil) == http.StatusOK {
						mu.Lock()
						acked = append(acked, key)
						mu.Unlock()
					}
				}
			}()
			ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
			eventuallyProc(t, "writes before the crash", func() bool { return ackedCount() >= 20 })
			leader.kill()
			before := ackedCount()
			eventuallyProc(t, "writes after the crash", func() bool { return ackedCount() >= before+20 })
			close(stop)
			<-writerDone

			newLeader := leaderProcess(t, survivors)
			if newLeader == leader {
				t.Fatal("the killed member still leads")
			}
			leader.start()
			eventuallyProc(t, "the restarted member to be healthy", leader.healthy)
			for _, p := range procs {
				var got getResponse
				if code := p.do("GET", "/v1/kv/w/?prefix=1&keys_only=1", "", &got); code != http.StatusOK {
					t.Fatalf("read on %s: %d", p.id, code)
				}
				have := map[string]bool{}
				for _, kv := range got.KVs {
					have[str(kv.Key)] = true
				}
				for _, k := range acked {
					if !have[k] {
						t.Fatalf("%s lost the acknowledged write %s", p.id, k)
					}
				}
			}
			t.Logf("%d writes acknowledged, %d after the leader %s was killed; %s leads now", len(acked), len(acked)-before, leader.id, newLeader.id)
		})
	}
}

// checkPeerRefusals shows that a TLS member's peer port refuses a client
// certificate from another CA and a plaintext client.
func checkPeerRefusals(t *testing.T, p *proc) {
	t.Helper()
	other, err := testcerts.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := other.TLSConfig("intruder")
	if err != nil {
		t.Fatal(err)
	}
	cfg.InsecureSkipVerify = true // the intruder trusts anyone; the member must not
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.peerAddr(), cfg)
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Write([]byte("hello"))
		if err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	plain, err := net.DialTimeout("tcp", p.peerAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	plain.SetDeadline(time.Now().Add(10 * time.Second))
	plain.Write([]byte("plaintext, not a TLS handshake"))
	_, err = io.ReadAll(plain) // the member closes (or resets) the connection
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a plaintext client was kept connected")
	}
	plain.Close()
}

// TestProcessesJoinAndRemove adds a fourth member process with --join, then
// removes it through the API: it exits, and restarting it on its old data
// refuses. A member of another cluster token is refused at join.
func TestProcessesJoinAndRemove(t *testing.T) {
	bin := nodeBinary(t)
	procs := []*proc{newProc(t, bin, "n1"), newProc(t, bin, "n2"), newProc(t, bin, "n3")}
	startProcesses(t, procs)
	if code := procs[0].do("PUT", "/v1/kv/k", "v", nil); code != http.StatusOK {
		t.Fatalf("put: %d", code)
	}

	n4 := newProc(t, bin, "n4")
	n4.start("--join", procs[1].peerAddr())
	eventuallyProc(t, "n4 to be healthy", n4.healthy)
	// n4 serves as soon as it has caught up as a learner; its promotion to
	// voter is the join's last step, a membership change of its own.
	var members membersResponse
	eventuallyProc(t, "n4 to be promoted to voter", func() bool {
		return n4.do("GET", "/v1/members", "", &members) == http.StatusOK && len(members.Members) == 4 && !members.Members[3].Learner
	})
	var got getResponse
	if code := n4.do("GET", "/v1/kv/k?serializable=1", "", &got); code != http.StatusOK || got.Count != 1 {
		t.Fatalf("n4's local copy: %d %+v", code, got)
	}

	if code := procs[0].do("DELETE", "/v1/members/n4", "", &members); code != http.StatusOK || len(members.Members) != 3 {
		t.Fatalf("removing n4: %d %+v", code, members)
	}
	if code := n4.wait(); code != 1 {
		t.Fatalf("removed n4 exited with %d, want 1", code)
	}
	n4.start()
	if code := n4.wait(); code != 1 || !strings.Contains(n4.logText(), "removed") {
		t.Fatalf("restarting removed n4: exit %d\n%s", code, n4.logText())
	}

	n5 := newProc(t, bin, "n5", "--cluster-token", "another-cluster")
	n5.start("--join", procs[0].peerAddr())
	if code := n5.wait(); code != 1 || !strings.Contains(n5.logText(), "cluster mismatch") {
		t.Fatalf("joining with another cluster token: exit %d\n%s", code, n5.logText())
	}
	if code := procs[2].do("GET", "/v1/members", "", &members); code != http.StatusOK || len(members.Members) != 3 {
		t.Fatalf("members at the end: %d %+v", code, members)
	}
}
