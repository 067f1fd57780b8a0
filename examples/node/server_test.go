package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kvstore/kvstore"
)

// The API tests run a real http.Server and http.Client over an in-memory
// listener (net.Pipe connections) against kvtest clusters, all inside
// testing/synctest bubbles: no sockets, and raft's timers, the server's
// timeouts and the tests' deadlines all run in virtual time.

// memListener is a net.Listener whose connections are net.Pipe pairs made
// by dial.
type memListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial connects to the listener; it has http.Transport.DialContext's
// signature.
func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	return nil, errors.Join(net.ErrClosed, ctx.Err())
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// testServer is the API of one node served over a memListener.
type testServer struct {
	t   testing.TB
	api *api
	// inflight counts the requests the server is handling.
	inflight *atomic.Int64
	srv      *http.Server
	client   *http.Client
	// ln is the server's listener; conns, when the server has a
	// connection limit, is the limiter around it.
	ln    *memListener
	conns *connLimitListener
}

// serve starts the API of node with opts and the server's default limits;
// t.Cleanup stops it (before the cluster, registered earlier, closes its
// nodes).
func serve(t testing.TB, node *kvstore.Node, opts apiOptions) *testServer {
	t.Helper()
	return serveLimited(t, node, opts, defaultLimits())
}

// serveLimited is serve with the server's limits lim: its timeouts and
// header size, and its connection limit (opts has the API's own).
func serveLimited(t testing.TB, node *kvstore.Node, opts apiOptions, lim limits) *testServer {
	t.Helper()
	mem := newMemListener()
	var ln net.Listener = mem
	var conns *connLimitListener
	if opts.refusals == nil {
		opts.refusals = new(refusals)
	}
	if lim.maxConnections > 0 {
		conns = limitConnections(mem, lim.maxConnections, lim.requestReadBytes(), &opts.refusals.connections, slog.New(slog.DiscardHandler))
		ln = conns
	}
	a := newAPI(node, opts)
	inflight := new(atomic.Int64)
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		a.ServeHTTP(w, r)
	}), lim, slog.New(slog.DiscardHandler))
	srv.RegisterOnShutdown(a.closeStreams)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{DialContext: mem.dial}
	s := &testServer{t: t, api: a, inflight: inflight, srv: srv, client: &http.Client{Transport: tr}, ln: mem, conns: conns}
	t.Cleanup(func() {
		// Shut down as main does: streams end, requests finish, and the
		// server's connection goroutines are gone before the bubble ends
		// (Close alone leaves some sleeping out a close delay).
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
			srv.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// do sends a request and returns the status and body.
func (s *testServer) do(method, path, body string, header ...string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://node"+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// call sends a request, checks the status, and decodes the JSON answer
// into out (if not nil). It returns the body.
func (s *testServer) call(method, path, body string, wantStatus int, out any, header ...string) []byte {
	s.t.Helper()
	status, data := s.do(method, path, body, header...)
	if status != wantStatus {
		s.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, wantStatus, data)
	}
	if out != nil {
		reflect.ValueOf(out).Elem().SetZero() // decoding into a used value would keep old fields
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields() // the tests' types name every field the API sends
		if err := dec.Decode(out); err != nil {
			s.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return data
}

// callError sends a request that must fail with status and code, and
// returns the error message, which must name no internal package.
func (s *testServer) callError(method, path, body string, wantStatus int, wantCode string, header ...string) string {
	s.t.Helper()
	var e errorBody
	s.call(method, path, body, wantStatus, &e, header...)
	if e.Code != wantCode {
		s.t.Fatalf("%s %s: code %q, want %q (error %q)", method, path, e.Code, wantCode, e.Error)
	}
	if e.Error == "" {
		s.t.Fatalf("%s %s: no error message", method, path)
	}
	checkClientMessage(s.t, e.Error)
	return e.Error
}

// internalPrefix matches a package prefix at the start of a message or of
// a wrapped segment of it.
var internalPrefix = regexp.MustCompile(`(^|: )(node|kvstore|mvcc|lease|watch|transport): `)

// checkClientMessage fails the test if msg, an error message a client
// received, shows an internal package prefix.
func checkClientMessage(t testing.TB, msg string) {
	t.Helper()
	if internalPrefix.MatchString(msg) {
		t.Errorf("error message %q shows an internal package prefix", msg)
	}
}

// revision returns the node's current revision per /v1/status.
func (s *testServer) revision() int64 {
	s.t.Helper()
	var st statusResponse
	s.call("GET", "/v1/status", "", http.StatusOK, &st)
	return st.Revision
}
