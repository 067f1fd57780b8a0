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

// memberCerts issues the certificates of a test cluster, from one CA, as
// files.
type memberCerts struct {
	t   *testing.T
	ca  *testcerts.CA
	dir string
}

func newMemberCerts(t *testing.T) *memberCerts {
	t.Helper()
	ca, err := testcerts.NewCA("kvstore test CA")
	if err != nil {
		t.Fatal(err)
	}
	return &memberCerts{t: t, ca: ca, dir: t.TempDir()}
}

// args returns the TLS flags of a certificate naming name (and 127.0.0.1),
// as the README says a member's certificate must. The files are written
// the first time and shared after that: a second process given name's
// flags holds the very same certificate and key.
func (m *memberCerts) args(name string) []string {
	m.t.Helper()
	f := testcerts.Files{
		Cert: filepath.Join(m.dir, name+".crt"),
		Key:  filepath.Join(m.dir, name+".key"),
		CA:   filepath.Join(m.dir, "ca.crt"),
	}
	if _, err := os.Stat(f.Cert); err != nil {
		if f, err = m.ca.WriteFiles(m.dir, name, name, "127.0.0.1"); err != nil {
			m.t.Fatal(err)
		}
	}
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
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
			var certs *memberCerts
			if withTLS {
				certs = newMemberCerts(t)
			}
			var procs []*proc
			for _, id := range []string{"n1", "n2", "n3"} {
				var extra []string
				if certs != nil {
					extra = certs.args(id)
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
	// Healthy comes before the promotion: a learner serves reads once it has
	// caught up, and the join promotes it after that.
	var members membersResponse
	eventuallyProc(t, "n4 to be promoted to voter", func() bool {
		members = membersResponse{}
		code := n4.do("GET", "/v1/members", "", &members)
		return code == http.StatusOK && len(members.Members) == 4 && !members.Members[3].Learner
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

// TestProcessesPeerIdentity runs a three-member TLS cluster, where peer
// identity is checked by default, and tries to pass a fourth process off as
// n3, with a certificate issued to n9 and with n1's own certificate:
//
//   - with the check on, the impostor's own certificate does not name its
//     --id, and it exits at once;
//   - with the check turned off on its side, it asks to join (as n3) and the
//     member it asks refuses the connection, logging why; it exits;
//   - on the real n3's sockets, after n3 is killed, it is dialled by the
//     leader as n3 and refused as a server: it receives no log entry, and
//     serves nothing.
//
// Meanwhile the cluster serves writes with its membership unchanged, and the
// real n3 comes back with every write.
func TestProcessesPeerIdentity(t *testing.T) {
	bin := nodeBinary(t)
	certs := newMemberCerts(t)
	procs := []*proc{newProc(t, bin, "n1", certs.args("n1")...), newProc(t, bin, "n2", certs.args("n2")...), newProc(t, bin, "n3", certs.args("n3")...)}
	startProcesses(t, procs)
	n1, n2, n3 := procs[0], procs[1], procs[2]
	// put writes key through n1, again if the cluster is between leaders
	// (killing n3 may cost it its leader); each key is written once or more,
	// which leaves one key.
	put := func(key string) {
		t.Helper()
		eventuallyProc(t, "a put of "+key, func() bool { return n1.do("PUT", "/v1/kv/"+key, "v", nil) == http.StatusOK })
	}
	checkMembers := func(when string) {
		t.Helper()
		var members membersResponse
		if code := n2.do("GET", "/v1/members", "", &members); code != http.StatusOK || len(members.Members) != 3 {
			t.Fatalf("members %s: %d %+v", when, code, members)
		}
		for _, m := range members.Members {
			for _, p := range procs {
				if m.ID == p.id && m.Address != p.peerAddr() {
					t.Fatalf("members %s: %s moved to %s, want %s", when, m.ID, m.Address, p.peerAddr())
				}
			}
		}
	}
	put("before")

	for _, tc := range []struct{ name, cert string }{{"n9's certificate", "n9"}, {"n1's certificate", "n1"}} {
		// The check on (the default): the impostor refuses to start.
		p := newProc(t, bin, "n3", certs.args(tc.cert)...)
		p.start("--join", n1.peerAddr())
		if code := p.wait(); code != 1 || !strings.Contains(p.logText(), `not its ID \"n3\"`) {
			t.Fatalf("%s as n3, check on: exit %d, want 1 naming its own certificate\n%s", tc.name, code, p.logText())
		}

		// The check off on its side: the member it asks refuses it.
		asked := n1
		if tc.cert == "n1" {
			asked = n2
		}
		before := len(asked.logText())
		p = newProc(t, bin, "n3", append(certs.args(tc.cert), "--peer-identity-check=false")...)
		p.start("--join", asked.peerAddr())
		if code := p.wait(); code != 1 || !strings.Contains(p.logText(), "peer identity refused") || !strings.Contains(p.logText(), "refused by the peer") {
			t.Fatalf("%s as n3 joining: exit %d, want 1 and the peer's refusal\n%s", tc.name, code, p.logText())
		}
		eventuallyProc(t, asked.id+" to log the refusal", func() bool {
			logs := asked.logText()[before:]
			return strings.Contains(logs, "refused connection") && strings.Contains(logs, `stated \"n3\"`) && strings.Contains(logs, "DNS:"+tc.cert)
		})
		put("after-" + tc.cert + "-joined")
		checkMembers("after " + tc.name + " asked to join as n3")
	}

	// On n3's own sockets, with n1's certificate.
	n3.kill()
	put("n3-down")
	leader := leaderProcess(t, procs[:2])
	before := len(leader.logText())
	impostor := &proc{t: t, bin: bin, id: "n3", dir: filepath.Join(t.TempDir(), "impostor"), peer: n3.peer, client: n3.client,
		extra: append(certs.args("n1"), "--peer-identity-check=false")}
	impostor.start()
	eventuallyProc(t, "the leader to refuse the impostor at n3's address", func() bool {
		logs := leader.logText()[before:]
		return strings.Contains(logs, "peer identity refused") && strings.Contains(logs, `expected \"n3\"`)
	})
	put("impostor-up")
	if st := impostor.status(); st.AppliedIndex != 0 || st.CommitIndex != 0 || st.LeaderID != "" {
		t.Fatalf("the impostor got the cluster's log: %+v\n%s", st, impostor.logText())
	}
	if impostor.healthy() {
		t.Fatal("the impostor is healthy")
	}
	var local getResponse // what it could serve: its own, empty, store
	if code := impostor.do("GET", "/v1/kv/?prefix=1&count_only=1&serializable=1", "", &local); code == http.StatusOK && local.Count != 0 {
		t.Fatalf("the impostor serves the cluster's data: %+v", local)
	}
	impostor.kill()
	checkMembers("after the impostor served at n3's address")

	n3.start()
	eventuallyProc(t, "the real n3 to be healthy", n3.healthy)
	var got getResponse
	if code := n3.do("GET", "/v1/kv/?prefix=1&keys_only=1", "", &got); code != http.StatusOK || got.Count != 5 {
		t.Fatalf("the real n3 after the impostors: %d %+v", code, got)
	}
}
