package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// sseEvent is one server-sent event, or one comment line.
type sseEvent struct {
	id, data, comment string
}

// sseStream reads a watch stream on its own goroutine, so that the server
// never blocks writing to it (net.Pipe has no buffer).
type sseStream struct {
	t      *testing.T
	cancel context.CancelFunc
	events chan sseEvent // closed at the end of the stream
}

// watch opens a watch stream that must answer 200.
func (s *testServer) watch(t *testing.T, path string, header ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://node"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: status %d, content type %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	st := &sseStream{t: t, cancel: cancel, events: make(chan sseEvent, 1024)}
	go func() {
		defer close(st.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && ev == sseEvent{}:
				// the end of a comment: no event (SSE dispatches none)
			case line == "":
				st.events <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, ": "):
				st.events <- sseEvent{comment: line[2:]}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				if ev.data != "" {
					ev.data += "\n" // the API sends one data line per event
				}
				ev.data += line[6:]
			default:
				st.events <- sseEvent{comment: "unexpected line " + line}
			}
		}
	}()
	t.Cleanup(st.close)
	return st
}

// close ends the stream from the client's side and waits for the reader.
func (st *sseStream) close() {
	st.cancel()
	for range st.events {
	}
}

// next returns the next message, skipping comments; ok is false at the
// end of the stream. It fails the test after a (virtual) minute.
func (st *sseStream) next() (id string, msg watchMessage, ok bool) {
	st.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				return "", watchMessage{}, false
			}
			if ev.comment != "" {
				if strings.HasPrefix(ev.comment, "unexpected") {
					st.t.Fatal(ev.comment)
				}
				continue
			}
			dec := json.NewDecoder(strings.NewReader(ev.data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&msg); err != nil {
				st.t.Fatalf("event data %q: %v", ev.data, err)
			}
			return ev.id, msg, true
		case <-timeout:
			st.t.Fatal("no watch message within a minute")
		}
	}
}

// events collects the events of the next messages until it has n.
func (st *sseStream) collect(n int) []watchEvent {
	st.t.Helper()
	var out []watchEvent
	for len(out) < n {
		id, msg, ok := st.next()
		if !ok {
			st.t.Fatalf("stream ended after %d of %d events", len(out), n)
		}
		if id != fmt.Sprint(msg.Header.Revision) || msg.Created || msg.Canceled {
			st.t.Fatalf("event message: id %q, %+v", id, msg)
		}
		out = append(out, msg.Events...)
	}
	if len(out) != n {
		st.t.Fatalf("%d events, want %d: %+v", len(out), n, out)
	}
	return out
}

// describe renders events as "PUT a/1@2 (prev -)".
func describe(evs []watchEvent) string {
	var out []string
	for _, ev := range evs {
		prev := "-"
		if ev.PrevKV != nil {
			prev = str(ev.PrevKV.Value)
		}
		val := ""
		if ev.KV.Value != nil {
			val = "=" + *ev.KV.Value
		}
		out = append(out, fmt.Sprintf("%s %s%s@%d (prev %s)", ev.Type, str(ev.KV.Key), val, ev.KV.ModRevision, prev))
	}
	return strings.Join(out, "; ")
}

func TestWatchStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		s.call("PUT", "/v1/kv/a/0", "old", http.StatusOK, nil) // revision 2
		st := s.watch(t, "/v1/watch/a/?prefix=1&prev_kv=1")
		id, msg, _ := st.next()
		if !msg.Created || id != "" || msg.Header.Revision != 2 || len(msg.Events) != 0 {
			t.Fatalf("first message: id %q %+v", id, msg)
		}
		// The watch is registered: every change from now on is delivered.
		s.call("PUT", "/v1/kv/a/1", "x", http.StatusOK, nil)   // 3
		s.call("PUT", "/v1/kv/b", "other", http.StatusOK, nil) // 4, not watched
		s.call("PUT", "/v1/kv/a/1", "y", http.StatusOK, nil)   // 5
		s.call("DELETE", "/v1/kv/a/?prefix=1", "", http.StatusOK, nil)
		got := describe(st.collect(4))
		want := "PUT a/1=x@3 (prev -); PUT a/1=y@5 (prev x); DELETE a/0@6 (prev old); DELETE a/1@6 (prev y)"
		if got != want {
			t.Fatalf("events\n got %s\nwant %s", got, want)
		}

		// From a past revision, history first.
		st2 := s.watch(t, "/v1/watch/a/1?rev=3")
		if _, msg, _ := st2.next(); !msg.Created {
			t.Fatalf("first message: %+v", msg)
		}
		if got := describe(st2.collect(3)); got != "PUT a/1=x@3 (prev -); PUT a/1=y@5 (prev -); DELETE a/1@6 (prev -)" {
			t.Fatalf("from revision 3: %s", got)
		}

		// Resuming after the message with id 3 (Last-Event-ID, as
		// EventSource sends it) starts at revision 4.
		st3 := s.watch(t, "/v1/watch/a/1", "Last-Event-ID", "3")
		st3.next() // created
		if got := describe(st3.collect(2)); got != "PUT a/1=y@5 (prev -); DELETE a/1@6 (prev -)" {
			t.Fatalf("resumed after 3: %s", got)
		}

		// base64: every key and value in the base64 fields.
		st4 := s.watch(t, "/v1/watch/bin?encoding=base64")
		st4.next()
		s.call("PUT", "/v1/kv/bin", "v", http.StatusOK, nil)
		if ev := st4.collect(1)[0]; ev.KV.Key != nil || str(ev.KV.KeyBase64) != "Ymlu" || str(ev.KV.ValueBase64) != "dg==" {
			t.Fatalf("base64 event: %+v", ev.KV)
		}
	})
}

// TestWatchEnds checks the ways a stream ends: the client going away, the
// server shutting down, the node closing.
func TestWatchEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := startNode(t, apiOptions{})
		st := s.watch(t, "/v1/watch/k")
		st.next()
		if n := s.inflight.Load(); n != 1 {
			t.Fatalf("%d requests in flight, want the stream", n)
		}
		st.close()
		eventually(t, time.Minute, "the handler to return after the client went away", func() bool {
			return s.inflight.Load() == 0
		})

		st = s.watch(t, "/v1/watch/k")
		st.next()
		s.api.closeStreams()
		_, msg, ok := st.next()
		if !ok || !msg.Canceled || msg.Error == nil || msg.Error.Code != "unavailable" {
			t.Fatalf("last message at shutdown: %+v", msg)
		}
		if _, _, ok := st.next(); ok {
			t.Fatal("stream goes on after its last message")
		}
		// A server shutting down takes no new stream either.
		st = s.watch(t, "/v1/watch/k")
		st.next()
		if _, msg, _ := st.next(); !msg.Canceled {
			t.Fatalf("stream opened after closeStreams: %+v", msg)
		}

		s2 := serve(t, c.Node(0), apiOptions{})
		st = s2.watch(t, "/v1/watch/k")
		st.next()
		c.Stop(0)
		_, msg, ok = st.next()
		if !ok || !msg.Canceled || msg.Error == nil || msg.Error.Code != "unavailable" {
			t.Fatalf("last message when the node closed: %+v", msg)
		}
		c.Restart(0)
		c.WaitLeader()
	})
}

// TestWatchOutlivesTimeouts checks that a watch stream outlives short
// header, body and idle timeouts and the server's WriteTimeout (30s), on a
// connection that had just carried a request with a body (under the body
// deadline), getting keep-alive comments while idle.
func TestWatchOutlivesTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := defaultLimits()
		lim.headerTimeout, lim.idleTimeout, lim.maxConnections = time.Second, time.Second, 2
		s := serveLimited(t, kvtest.NewCluster(t, 1).WaitLeader(), apiOptions{bodyTimeout: time.Second}, lim)
		s.call("PUT", "/v1/kv/k", "early", http.StatusOK, nil)
		st := s.watch(t, "/v1/watch/k")
		st.next()
		if n := s.conns.openConnections(); n != 1 {
			t.Fatalf("%d connections open, want the PUT's, reused by the watch", n)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		comments := 0
	drain:
		for {
			select {
			case ev := <-st.events:
				if ev.comment != "keep-alive" {
					t.Fatalf("idle stream sent %+v", ev)
				}
				comments++
			default:
				break drain
			}
		}
		if comments != 8 { // one every 15s
			t.Fatalf("%d keep-alive comments in 2 minutes, want 8", comments)
		}
		s.call("PUT", "/v1/kv/k", "late", http.StatusOK, nil) // on a second connection
		if got := describe(st.collect(1)); !strings.HasPrefix(got, "PUT k=late") {
			t.Fatalf("event after 2 idle minutes: %s", got)
		}
	})
}

func TestWatchErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := startNode(t, apiOptions{})
		for i := range 4 {
			s.call("PUT", "/v1/kv/k", fmt.Sprint(i), http.StatusOK, nil) // revisions 2-5
		}
		if _, err := c.Node(0).Compact(t.Context(), 4); err != nil {
			t.Fatal(err)
		}
		var e errorBody
		s.call("GET", "/v1/watch/k?rev=3", "", http.StatusGone, &e)
		if e.Code != "compacted" || e.CompactRevision != 4 {
			t.Fatalf("compacted start: %+v", e)
		}
		s.callError("GET", "/v1/watch/k", "", http.StatusGone, "compacted", "Last-Event-ID", "1")
		s.callError("GET", "/v1/watch/k?rev=-1", "", http.StatusBadRequest, "bad_request")
		s.callError("GET", "/v1/watch/k?revision=2", "", http.StatusBadRequest, "bad_request")
		s.callError("GET", "/v1/watch/k?prefix=1&from_key=1", "", http.StatusBadRequest, "invalid_argument")
		s.callError("GET", "/v1/watch/k", "", http.StatusBadRequest, "bad_request", "Last-Event-ID", "x")
		if n := s.inflight.Load(); n != 0 {
			t.Fatalf("%d requests still in flight after refused watches", n)
		}
		// The compact revision itself is still watchable.
		st := s.watch(t, "/v1/watch/k?rev=4")
		st.next()
		if got := describe(st.collect(2)); got != "PUT k=2@4 (prev -); PUT k=3@5 (prev -)" {
			t.Fatalf("from the compact revision: %s", got)
		}
	})
}

// TestWatchMessages checks the messages a stream rarely shows: a progress
// notification (live), and a watch cancelled by compaction after it began
// (converted directly: it takes a client far behind a compaction).
func TestWatchMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{}, kvtest.WithNodeOptions(kvstore.WithWatchProgressInterval(time.Second)))
		s.call("PUT", "/v1/kv/other", "x", http.StatusOK, nil) // revision 2
		st := s.watch(t, "/v1/watch/k?progress_notify=1")
		st.next()
		id, msg, _ := st.next()
		if !msg.ProgressNotify || id != "2" || msg.Header.Revision != 2 || len(msg.Events) != 0 {
			t.Fatalf("progress notification: id %q %+v", id, msg)
		}

		msg, id = s.api.watchMessage(kvstore.WatchResponse{Revision: 9, Canceled: true, CompactRevision: 7, Err: kvstore.ErrCompacted}, encoding{})
		if id != "" || !msg.Canceled || msg.CompactRevision != 7 || msg.Error == nil || msg.Error.Code != "compacted" ||
			msg.Error.CompactRevision != 7 || msg.ProgressNotify || msg.Header.MemberID != "n1" {
			t.Fatalf("cancelled by compaction: id %q %+v %+v", id, msg, msg.Error)
		}
		checkClientMessage(t, msg.Error.Error)
	})
}
