package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// rawConn is one client connection driven by hand: to hold it open, or to
// send a request slowly.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialRaw opens a connection to a dial function such as memListener.dial;
// t.Cleanup closes it.
func dialRaw(t *testing.T, dial func(context.Context, string, string) (net.Conn, error)) *rawConn {
	t.Helper()
	c, err := dial(t.Context(), "tcp", "node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes the parts of a request on a goroutine of its own (a net.Pipe
// write blocks until the server reads it), waiting gap before each part
// after the first; the channel gets the first write error, or nil, and is
// then closed.
func (rc *rawConn) send(gap time.Duration, parts ...string) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i, p := range parts {
			if i > 0 {
				time.Sleep(gap)
			}
			if _, err := io.WriteString(rc.c, p); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// response reads the next response and its body.
func (rc *rawConn) response() (*http.Response, []byte) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading a response body: %v", err)
	}
	return resp, body
}

// get sends a GET of path and returns its response, keeping the
// connection open.
func (rc *rawConn) get(path string) (*http.Response, []byte) {
	rc.t.Helper()
	sent := rc.send(0, "GET "+path+" HTTP/1.1\r\nHost: node\r\n\r\n")
	resp, body := rc.response()
	if err := <-sent; err != nil {
		rc.t.Fatalf("sending GET %s: %v", path, err)
	}
	return resp, body
}

// closedByServer reports whether the server closed the connection: the
// next read ends (no more bytes are expected).
func (rc *rawConn) closedByServer() bool {
	_, err := rc.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed)
}

// checkRefusal checks an error answer: status, code, Retry-After.
func checkRefusal(t *testing.T, resp *http.Response, body []byte, status int, code, retryAfter string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%d answer %q: %v", resp.StatusCode, body, err)
	}
	if resp.StatusCode != status || e.Code != code || e.Error == "" ||
		resp.Header.Get("Retry-After") != retryAfter || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %v %s, want %d code %s, Retry-After %q", resp.StatusCode, resp.Header, body, status, code, retryAfter)
	}
	checkClientMessage(t, e.Error)
}

// TestWatchStreamLimit checks --max-concurrent-streams: with the limit
// open, one more stream is refused with a 429 before any event; closing a
// stream frees its place.
func TestWatchStreamLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{maxStreams: 2})
		first, second := s.watch(t, "/v1/watch/a"), s.watch(t, "/v1/watch/b")
		first.next()
		second.next()

		resp, err := s.client.Get("http://node/v1/watch/c")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkRefusal(t, resp, body, http.StatusTooManyRequests, "too_many_streams", "1")
		if n := s.api.opts.refusals.streams.Load(); n != 1 {
			t.Fatalf("%d stream refusals counted, want 1", n)
		}
		if n := s.inflight.Load(); n != 2 {
			t.Fatalf("%d requests in flight after the refusal, want the 2 streams", n)
		}

		// The streams still open are unaffected.
		s.call("PUT", "/v1/kv/a", "x", http.StatusOK, nil)
		if got := describe(first.collect(1)); !strings.HasPrefix(got, "PUT a=x") {
			t.Fatalf("first stream after the refusal: %s", got)
		}

		first.close()
		eventually(t, time.Minute, "the closed stream to give back its place", func() bool {
			return s.api.streams.Load() == 1
		})
		third := s.watch(t, "/v1/watch/c")
		if _, msg, _ := third.next(); !msg.Created {
			t.Fatalf("stream opened in the freed place: %+v", msg)
		}
		if n := s.api.opts.refusals.streams.Load(); n != 1 {
			t.Fatalf("%d stream refusals counted, want still 1", n)
		}
	})
}

// TestConnectionLimit checks --client-max-connections: with the limit
// open, one more connection gets a 503 and is closed; closing one frees
// its place.
func TestConnectionLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := defaultLimits()
		lim.maxConnections = 2
		s := serveLimited(t, kvtest.NewCluster(t, 1).WaitLeader(), apiOptions{}, lim)
		var held []*rawConn
		for range 2 {
			c := dialRaw(t, s.ln.dial)
			if resp, body := c.get("/v1/status"); resp.StatusCode != http.StatusOK {
				t.Fatalf("a connection under the limit: %d %s", resp.StatusCode, body)
			}
			held = append(held, c) // kept open: keep-alive
		}
		if n := s.conns.openConnections(); n != 2 {
			t.Fatalf("%d connections open, want 2", n)
		}

		over := dialRaw(t, s.ln.dial)
		resp, body := over.get("/v1/status")
		checkRefusal(t, resp, body, http.StatusServiceUnavailable, "too_many_connections", "1")
		if !resp.Close || !over.closedByServer() {
			t.Fatalf("the refused connection stays open: %v", resp.Header)
		}
		if n := s.api.opts.refusals.connections.Load(); n != 1 {
			t.Fatalf("%d connection refusals counted, want 1", n)
		}
		// The connections under the limit still serve.
		if resp, _ := held[1].get("/v1/status"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a held connection after the refusal: %d", resp.StatusCode)
		}

		held[0].c.Close()
		eventually(t, time.Minute, "the closed connection to give back its place", func() bool {
			return s.conns.openConnections() == 1
		})
		again := dialRaw(t, s.ln.dial)
		if resp, body := again.get("/v1/status"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a connection in the freed place: %d %s", resp.StatusCode, body)
		}
	})
}

// TestConnectionLimitTCP checks the refusal over real TCP on loopback, of
// clients in the middle of sending a 1 MiB body: each reads the 503 (a
// close with the request unread would reset the connection, and the
// client would see a write error instead).
func TestConnectionLimitTCP(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := new(atomic.Int64)
	ln := limitConnections(inner, 1, 4<<20, refused, slog.New(slog.DiscardHandler))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", inner.Addr().String())
	}
	holder := dialRaw(t, dial)
	if resp, _ := holder.get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first connection: %d", resp.StatusCode)
	}
	for i := range 5 {
		tr := &http.Transport{DialContext: dial}
		resp, err := (&http.Client{Transport: tr}).Post("http://node/", "text/plain", strings.NewReader(strings.Repeat("x", 1<<20)))
		if err != nil {
			t.Fatalf("connection %d over the limit: %v (want a 503)", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		checkRefusal(t, resp, body, http.StatusServiceUnavailable, "too_many_connections", "1")
	}
	if n := refused.Load(); n != 5 {
		t.Fatalf("%d refusals counted, want 5", n)
	}
}

// TestSlowBodyCutOff checks --client-body-timeout: a client that stops
// sending its body, or trickles it, gets a 408 when the timeout runs out
// after its headers, its handler returns, the connection closes, and
// nothing is written.
func TestSlowBodyCutOff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []string // sent 500ms apart after the headers
	}{
		{"stalled", []string{"abc"}},
		{"trickled", strings.Split(strings.Repeat("x", 50), "")},
		{"chunked", []string{"5\r\nhello\r\n", "5\r\nworld\r\n", "5\r\nagain\r\n", "5\r\nand a\r\n", "5\r\ngain!\r\n", "5\r\nmore.\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const timeout = 2 * time.Second
				_, s := startNode(t, apiOptions{bodyTimeout: timeout})
				c := dialRaw(t, s.ln.dial)
				header := "PUT /v1/kv/k HTTP/1.1\r\nHost: node\r\nContent-Length: 100\r\n\r\n"
				if tc.name == "chunked" {
					header = "PUT /v1/kv/k HTTP/1.1\r\nHost: node\r\nTransfer-Encoding: chunked\r\n\r\n"
				}
				start := time.Now()
				sent := c.send(500*time.Millisecond, append([]string{header}, tc.parts...)...)
				resp, body := c.response()
				if took := time.Since(start); took < timeout || took > timeout+time.Second {
					t.Errorf("answered after %v, want the body timeout %v", took, timeout)
				}
				var e errorBody
				if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusRequestTimeout || e.Code != "request_timeout" {
					t.Fatalf("slow body: %d %s", resp.StatusCode, body)
				}
				if !resp.Close || !c.closedByServer() {
					t.Fatalf("the connection stays open after the 408: %v", resp.Header)
				}
				<-sent // the writer gives up once the server closed
				eventually(t, time.Second, "the handler to return", func() bool { return s.inflight.Load() == 0 })
				if n := s.api.opts.refusals.slowBodies.Load(); n != 1 {
					t.Fatalf("%d slow bodies counted, want 1", n)
				}
				var get getResponse
				s.call("GET", "/v1/kv/k", "", http.StatusOK, &get)
				if get.Count != 0 {
					t.Fatalf("a cut-off body was written: %+v", get)
				}
				// A body sent in time, slowly, is served.
				c = dialRaw(t, s.ln.dial)
				sent = c.send(500*time.Millisecond, "PUT /v1/kv/k HTTP/1.1\r\nHost: node\r\nContent-Length: 3\r\n\r\n", "a", "b", "c")
				if resp, body := c.response(); resp.StatusCode != http.StatusOK {
					t.Fatalf("a body in time: %d %s", resp.StatusCode, body)
				}
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestRunLimits checks that the limit flags reach the program's server:
// --client-max-connections, --max-request-bytes (and the body limit at
// twice it), --max-concurrent-streams.
func TestRunLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startProgram(t, transport.NewNetwork(), []string{"--id", "n1", "--data-dir", t.TempDir(), "--listen", "10.0.0.1:2380",
			"--initial-cluster", "n1=10.0.0.1:2380", "--client-max-connections", "3", "--max-request-bytes", "1000",
			"--max-concurrent-streams", "1"}, join)
		<-p.ready
		var held []*rawConn
		for range 3 {
			c := dialRaw(t, p.ln.dial)
			c.get("/v1/status")
			held = append(held, c)
		}
		over := dialRaw(t, p.ln.dial)
		resp, body := over.get("/v1/status")
		checkRefusal(t, resp, body, http.StatusServiceUnavailable, "too_many_connections", "1")
		for _, c := range held {
			c.c.Close()
		}
		eventually(t, time.Minute, "the raw connections to give back their places", func() bool {
			c := dialRaw(t, p.ln.dial)
			defer c.c.Close()
			resp, _ := c.get("/v1/status")
			return resp.StatusCode == http.StatusOK
		})

		// From here on the client uses two connections at most, and one
		// raw connection may still be closing: 3 is enough.
		s := p.client()
		eventually(t, time.Minute, "the node to be healthy", func() bool {
			ok, _ := s.healthy()
			return ok
		})
		msg := s.callError("PUT", "/v1/kv/k", strings.Repeat("x", 1500), http.StatusRequestEntityTooLarge, "request_too_large")
		if !strings.Contains(msg, "limit 1000") {
			t.Errorf("over --max-request-bytes: %s", msg)
		}
		st := s.watch(t, "/v1/watch/k")
		st.next()
		s.callError("GET", "/v1/watch/j", "", http.StatusTooManyRequests, "too_many_streams")
		msg = s.callError("PUT", "/v1/kv/k", strings.Repeat("x", 2001), http.StatusRequestEntityTooLarge, "request_too_large")
		if !strings.Contains(msg, "body too large") {
			t.Errorf("over the body limit (2000 bytes): %s", msg)
		}
		if log := p.stderr.String(); !strings.Contains(log, "watch stream limit reached") || !strings.Contains(log, "client connection limit reached") {
			t.Errorf("the refusals are not in the log:\n%s", log)
		}
	})
}
