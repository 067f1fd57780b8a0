package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/testcerts"
	"github.com/kvstore/kvstore/transport"
)

// newTCP starts a TCP transport on a loopback port-0 listener and closes it when the test ends.
func newTCP(t testing.TB, opts ...transport.Option) *transport.TCPTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transport.NewTCP("", append([]transport.Option{transport.WithListener(ln)}, opts...)...)
	if err != nil {
		t.Fatalf("NewTCP: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// echo is a handler answering "<name>:<request>" that counts the requests it served.
type echo struct {
	name string
	n    atomic.Int64
}

func (e *echo) handle(_ context.Context, req []byte) []byte {
	e.n.Add(1)
	return append([]byte(e.name+":"), req...)
}

// serveEcho installs an echo handler named after the transport's address.
func serveEcho(tr transport.Transport) *echo {
	e := &echo{name: string(tr.LocalAddr())}
	tr.SetHandler(e.handle)
	return e
}

// callEcho calls to's echo handler from from and fails the test unless the reply comes back.
func callEcho(t testing.TB, from, to transport.Transport) {
	t.Helper()
	reply, err := from.Call(context.Background(), "", to.LocalAddr(), []byte("ping"))
	if err != nil {
		t.Fatalf("Call %s→%s: %v", from.LocalAddr(), to.LocalAddr(), err)
	}
	if want := string(to.LocalAddr()) + ":ping"; string(reply) != want {
		t.Fatalf("Call %s→%s: reply %q, want %q", from.LocalAddr(), to.LocalAddr(), reply, want)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// noLeaks runs f with a pprof label unique to the test, which every goroutine f starts (and
// the goroutines those start) inherits; once f has returned it waits up to 10 s for all of
// them to end and fails the test with the stacks of those left.
func noLeaks(t *testing.T, f func()) {
	t.Helper()
	label := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	pprof.Do(context.Background(), pprof.Labels("transport-test", label), func(context.Context) { f() })
	want := fmt.Sprintf("%q:%q", "transport-test", label)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		var left []string
		for _, group := range strings.Split(buf.String(), "\n\n") {
			if strings.Contains(group, "# labels:") && strings.Contains(group, want) {
				left = append(left, group)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left behind:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

// certFiles writes a certificate issued by ca for names (and ca's certificate) to a new
// temporary directory and returns the paths.
func certFiles(t testing.TB, ca *testcerts.CA, names ...string) testcerts.Files {
	t.Helper()
	f, err := ca.WriteFiles(t.TempDir(), "node", names...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newCA makes a test CA.
func newCA(t testing.TB, name string) *testcerts.CA {
	t.Helper()
	ca, err := testcerts.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// withFilesTLS returns a WithTLS option loading a certificate for names, issued by ca, from
// files.
func withFilesTLS(t testing.TB, ca *testcerts.CA, names ...string) transport.Option {
	t.Helper()
	f := certFiles(t, ca, names...)
	cfg, err := transport.LoadTLSConfig(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatal(err)
	}
	return transport.WithTLS(cfg)
}

// withIdentity returns the options of a member id that checks peer identity: a certificate
// naming id (and names, if given) issued by ca, loaded from files, WithLocalID(id) and
// WithPeerIDCheck.
func withIdentity(t testing.TB, ca *testcerts.CA, id string, names ...string) []transport.Option {
	t.Helper()
	return []transport.Option{withFilesTLS(t, ca, append([]string{id}, names...)...),
		transport.WithLocalID(raft.ServerID(id)), transport.WithPeerIDCheck()}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (log handlers).
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
