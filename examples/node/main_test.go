package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
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

// program is one run of the whole program in a synctest bubble, with an
// in-memory peer network, in-memory storage and an in-memory client
// listener.
type program struct {
	t      *testing.T
	stderr syncBuffer
	ln     *memListener
	cancel context.CancelFunc // the signal
	exit   chan int
	ready  chan net.Addr
}

func startProgram(t *testing.T, network *transport.Network, args []string, join func(context.Context, *kvstore.Node, config) error) *program {
	t.Helper()
	return startProgramWith(t, network, args, join, kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()))
}

// startProgramWith is startProgram with the storage option given (none:
// the data dir).
func startProgramWith(t *testing.T, network *transport.Network, args []string, join func(context.Context, *kvstore.Node, config) error, storage ...kvstore.Option) *program {
	t.Helper()
	p := &program{t: t, ln: newMemListener(), exit: make(chan int, 1), ready: make(chan net.Addr, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	w := wiring{
		newTransport: func(cfg config, _ *slog.Logger) (transport.Transport, error) {
			return network.Join(cfg.advertise)
		},
		join:        join,
		listen:      func(string, string) (net.Listener, error) { return p.ln, nil },
		nodeOptions: append(storage, kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond)),
		ready:       p.ready,
	}
	go func() { p.exit <- run(ctx, args, &p.stderr, w) }()
	t.Cleanup(func() {
		cancel()
		<-p.exit
	})
	return p
}

// client returns a testServer that talks to the program's API.
func (p *program) client() *testServer {
	tr := &http.Transport{DialContext: p.ln.dial}
	p.t.Cleanup(tr.CloseIdleConnections)
	return &testServer{t: p.t, client: &http.Client{Transport: tr}}
}

// wait returns the exit status, failing after a (virtual) minute.
func (p *program) wait() int {
	p.t.Helper()
	select {
	case code := <-p.exit:
		p.exit <- code // for the cleanup
		return code
	case <-time.After(time.Minute):
		p.t.Fatalf("the program did not exit; log:\n%s", p.stderr.String())
		return -1
	}
}

// TestRun runs a one-member cluster the way main does, serves requests,
// and shuts down on the signal: the open watch stream gets its last
// message, and the program exits 0 after closing the node.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startProgram(t, transport.NewNetwork(), []string{"--id", "n1", "--data-dir", t.TempDir(), "--listen", "10.0.0.1:2380",
			"--initial-cluster", "n1=10.0.0.1:2380", "--log-level", "debug"}, join)
		<-p.ready
		s := p.client()
		eventually(t, time.Minute, "the node to be healthy", func() bool {
			ok, _ := s.healthy()
			return ok
		})
		s.call("PUT", "/v1/kv/k", "v", http.StatusOK, nil)
		var get getResponse
		s.call("GET", "/v1/kv/k", "", http.StatusOK, &get)
		if str(get.KVs[0].Value) != "v" {
			t.Fatalf("get: %+v", get)
		}
		st := s.watch(t, "/v1/watch/k")
		st.next()

		p.cancel() // SIGINT
		_, msg, ok := st.next()
		if !ok || !msg.Canceled || msg.Error.Code != "unavailable" {
			t.Fatalf("watch at shutdown: %+v", msg)
		}
		if code := p.wait(); code != 0 {
			t.Fatalf("exit status %d; log:\n%s", code, p.stderr.String())
		}
		log := p.stderr.String()
		for _, want := range []string{"node open", "client API serving", "leading", "shutting down", "node closed"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
	})
}

// TestRunFailures checks the exit statuses: 2 for a bad command line, 1
// when the transport is not available or no member admits the node.
func TestRunFailures(t *testing.T) {
	var stderr syncBuffer
	if code := run(t.Context(), []string{"--id", "n1"}, &stderr, wiring{}); code != 2 || !strings.Contains(stderr.String(), "--data-dir is required") {
		t.Fatalf("bad flags: %d %s", code, stderr.String())
	}
	if code := run(t.Context(), []string{"-h"}, &stderr, wiring{}); code != 0 || !strings.Contains(stderr.String(), "--initial-cluster") {
		t.Fatalf("-h: %d %s", code, stderr.String())
	}
	stderr = syncBuffer{}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	args := []string{"--id", "n1", "--data-dir", t.TempDir(), "--listen", busy.Addr().String(), "--initial-cluster", "n1=" + busy.Addr().String(), "--client-listen", "127.0.0.1:0"}
	if code := run(t.Context(), args, &stderr, wiring{newTransport: newTransport}); code != 1 || !strings.Contains(stderr.String(), "address already in use") {
		t.Fatalf("peer address taken: %d %s", code, stderr.String())
	}

	synctest.Test(t, func(t *testing.T) {
		p := startProgram(t, transport.NewNetwork(), []string{"--id", "n2", "--data-dir", t.TempDir(), "--listen", "10.0.0.2:2380",
			"--join", "10.0.0.1:2380"}, join)
		if code := p.wait(); code != 1 || !strings.Contains(p.stderr.String(), "no member could add this node") {
			t.Fatalf("join with no member reachable: %d\n%s", code, p.stderr.String())
		}
	})
}

// TestRunJoin checks that a member started with --join (and --learner)
// is admitted by the running cluster's only member, then serves reads,
// and exits 0 on the signal.
func TestRunJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		network := transport.NewNetwork()
		tr, err := network.Join("10.0.0.1:2380")
		if err != nil {
			t.Fatal(err)
		}
		first, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
			kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "10.0.0.1:2380"}),
			kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { first.Close() })
		if _, err := first.Put(t.Context(), []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		p := startProgram(t, network, []string{"--id", "n2", "--data-dir", t.TempDir(), "--listen", "10.0.0.2:2380",
			"--join", "10.0.0.1:2380", "--learner"}, join)
		<-p.ready
		s := p.client()
		eventually(t, time.Minute, "the new learner to be healthy", func() bool {
			ok, _ := s.healthy()
			return ok
		})
		var get getResponse
		s.call("GET", "/v1/kv/k", "", http.StatusOK, &get)
		if get.Count != 1 {
			t.Fatalf("after joining: %+v\n%s", get, p.stderr.String())
		}
		// The program logs the join when its Join call returns, which can
		// be after the learner already serves: it applies what committed as
		// soon as the leader tells it, while Join still waits for its answer.
		eventually(t, time.Minute, "the join to be logged", func() bool {
			return strings.Contains(p.stderr.String(), "joined the cluster")
		})
		var ms membersResponse
		s.call("GET", "/v1/members", "", http.StatusOK, &ms)
		if len(ms.Members) != 2 || !ms.Members[1].Learner {
			t.Fatalf("members: %+v", ms)
		}
		p.cancel()
		if code := p.wait(); code != 0 {
			t.Fatalf("exit %d\n%s", code, p.stderr.String())
		}
	})
}

// TestRunThreeMembers starts the README's three commands (on the
// in-memory network), writes through one member, reads through the
// others, stops one with the signal and checks the other two serve on.
func TestRunThreeMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		network := transport.NewNetwork()
		const cluster = "n1=127.0.0.1:2380,n2=127.0.0.1:22380,n3=127.0.0.1:32380"
		var programs []*program
		var clients []*testServer
		for i, peer := range []string{"127.0.0.1:2380", "127.0.0.1:22380", "127.0.0.1:32380"} {
			id := fmt.Sprint("n", i+1)
			p := startProgram(t, network, []string{"--id", id, "--data-dir", filepath.Join(t.TempDir(), id), "--listen", peer,
				"--client-listen", strings.Replace(peer, "80", "79", 1), "--initial-cluster", cluster}, join)
			<-p.ready
			programs, clients = append(programs, p), append(clients, p.client())
		}
		for _, s := range clients {
			eventually(t, time.Minute, "every member to be healthy", func() bool {
				ok, _ := s.healthy()
				return ok
			})
		}
		clients[0].call("PUT", "/v1/kv/greeting", "v1", http.StatusOK, nil)
		for _, s := range clients[1:] {
			var get getResponse
			s.call("GET", "/v1/kv/greeting", "", http.StatusOK, &get)
			if get.Count != 1 || str(get.KVs[0].Value) != "v1" {
				t.Fatalf("read on another member: %+v", get)
			}
		}
		programs[0].cancel()
		if code := programs[0].wait(); code != 0 {
			t.Fatalf("n1 exit %d\n%s", code, programs[0].stderr.String())
		}
		for _, s := range clients[1:] {
			eventually(t, time.Minute, "the other two to serve on", func() bool {
				ok, _ := s.healthy()
				return ok
			})
		}
		clients[1].call("PUT", "/v1/kv/greeting", "v2", http.StatusOK, nil)
		var get getResponse
		clients[2].call("GET", "/v1/kv/greeting", "", http.StatusOK, &get)
		if str(get.KVs[0].Value) != "v2" {
			t.Fatalf("after n1 stopped: %+v", get)
		}
	})
}
