package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kvstore/kvstore"
)

// GET /v1/watch/{key...} streams a kvstore watch as server-sent events
// (text/event-stream). Each watch response is one event whose data is one
// line of JSON (watchMessage):
//
//	data: {"header":{"revision":7},"created":true}
//
//	id: 8
//	data: {"header":{"revision":8},"events":[{"type":"PUT","kv":{...}}]}
//
// The first message has created set: the watch is registered, and every
// change from the start revision on will follow. Messages with events (and
// progress notifications) carry an SSE id, the header revision: every event
// up to it was delivered, so a client that reconnects with the standard
// Last-Event-ID header (browsers' EventSource do) resumes exactly where it
// left off (a rev parameter takes precedence over the header). Comment
// lines (": keep-alive") keep idle streams open.
//
// Query: prefix, from_key, rev (start revision; default the next one),
// prev_kv, progress_notify, encoding. A start revision already compacted
// answers 410 before the stream starts, with the compact revision in the
// body; if compaction overtakes the stream later (a client far behind),
// its last message has canceled, compact_revision and error set. The
// stream also ends when the client goes away, the node closes, or the
// server shuts down (a last message with error code "unavailable").
// With --max-concurrent-streams open already, a new stream is refused
// with 429 (code too_many_streams, Retry-After: 1) before it starts.

// watchMessage is one watch response in JSON.
type watchMessage struct {
	Header jsonHeader `json:"header"`
	// Created marks the first message of the stream.
	Created bool `json:"created,omitempty"`
	// ProgressNotify marks a bookmark: every event up to the header
	// revision was delivered.
	ProgressNotify bool         `json:"progress_notify,omitempty"`
	Events         []watchEvent `json:"events,omitempty"`
	// Canceled marks the last message; Error says why, CompactRevision is
	// set when the revisions the watch still had to deliver are compacted.
	Canceled        bool       `json:"canceled,omitempty"`
	CompactRevision int64      `json:"compact_revision,omitempty"`
	Error           *errorBody `json:"error,omitempty"`
}

type watchEvent struct {
	Type   string  `json:"type"` // PUT or DELETE
	KV     *jsonKV `json:"kv"`
	PrevKV *jsonKV `json:"prev_kv,omitempty"`
}

func (a *api) watch(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	prefix, fromKey := q.flag("prefix"), q.flag("from_key")
	rev := q.int("rev")
	prevKV, progress := q.flag("prev_kv"), q.flag("progress_notify")
	enc := q.encoding()
	if err := q.done(); err != nil {
		a.writeError(w, r, err)
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" && rev == 0 {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			a.writeError(w, r, fmt.Errorf("%w: Last-Event-ID %q: want a revision", errBadRequest, last))
			return
		}
		rev = n + 1
	}
	opts := []kvstore.OpOption{kvstore.WithCreatedNotify()}
	add := func(on bool, o kvstore.OpOption) {
		if on {
			opts = append(opts, o)
		}
	}
	add(prefix, kvstore.WithPrefix())
	add(fromKey, kvstore.WithFromKey())
	add(rev != 0, kvstore.WithRev(rev))
	add(prevKV, kvstore.WithPrevKV())
	add(progress, kvstore.WithProgressNotify())

	if !a.acquireStream() {
		if total, log := count(&a.opts.refusals.streams); log {
			a.opts.logger.Warn("watch stream limit reached: refusing new streams with 429",
				"limit", a.opts.maxStreams, "refused_so_far", total, "remote", r.RemoteAddr)
		}
		a.writeError(w, r, fmt.Errorf("%w: %d open (--max-concurrent-streams)", errTooManyStreams, a.opts.maxStreams))
		return
	}
	defer a.streams.Add(-1)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel() // ends the watch
	ch, err := a.node.Watch(ctx, []byte(r.PathValue("key")), opts...)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// With WithCreatedNotify the created response is queued before Watch
	// returns, and so is the cancellation of a watch whose start revision
	// is compacted: both can be read without blocking, so that a compacted
	// start is an HTTP status rather than an event.
	created, ok := <-ch
	if !ok {
		a.writeError(w, r, kvstore.ErrWatchClosed)
		return
	}
	var pending []kvstore.WatchResponse
	select {
	case resp, ok := <-ch:
		if !ok {
			a.writeError(w, r, kvstore.ErrWatchClosed)
			return
		}
		if resp.Canceled && len(resp.Events) == 0 {
			a.writeError(w, r, watchErr(resp))
			return
		}
		pending = append(pending, resp)
	default:
	}

	s := newEventStream(w, a.opts.streamWriteTimeout)
	if err := s.start(); err != nil {
		return
	}
	send := func(resp kvstore.WatchResponse) error {
		msg, id := a.watchMessage(resp, enc)
		return s.send(id, msg)
	}
	if send(created) != nil {
		return
	}
	for _, resp := range pending {
		if send(resp) != nil || resp.Canceled {
			return
		}
	}
	keepAlive := time.NewTicker(a.opts.streamKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				return // ctx ended: the client went away
			}
			if send(resp) != nil || resp.Canceled {
				return
			}
		case <-keepAlive.C:
			if s.comment("keep-alive") != nil {
				return
			}
		case <-a.closing:
			body := a.errorBody(errShuttingDown)
			s.send("", watchMessage{Header: jsonHeader{Revision: a.node.Status().Revision}, Canceled: true, Error: &body})
			return
		case <-ctx.Done():
			return
		}
	}
}

// acquireStream takes a place for one more watch stream, if there is one
// under maxStreams; the caller gives it back with streams.Add(-1). The
// place is taken before the watch exists, so that a refused stream costs
// nothing but its answer (a 429, before any event).
func (a *api) acquireStream() bool {
	if a.opts.maxStreams < 0 { // noLimit
		a.streams.Add(1)
		return true
	}
	if a.streams.Add(1) > int64(a.opts.maxStreams) {
		a.streams.Add(-1)
		return false
	}
	return true
}

// watchErr is the error a cancelled watch response reports.
func watchErr(resp kvstore.WatchResponse) error {
	switch {
	case resp.Err != nil:
		return resp.Err
	case resp.CompactRevision != 0:
		return kvstore.ErrCompacted
	}
	return kvstore.ErrWatchClosed
}

// watchMessage converts resp, and returns the SSE id it may carry (empty
// for created and cancelled messages, whose revision is no resume point).
func (a *api) watchMessage(resp kvstore.WatchResponse, enc encoding) (watchMessage, string) {
	msg := watchMessage{
		Header:          jsonHeader{Revision: resp.Revision, MemberID: a.node.ID()},
		Created:         resp.Created,
		ProgressNotify:  resp.IsProgressNotify(),
		Canceled:        resp.Canceled,
		CompactRevision: resp.CompactRevision,
	}
	for i := range resp.Events {
		ev := &resp.Events[i]
		msg.Events = append(msg.Events, watchEvent{
			Type:   ev.Type.String(),
			KV:     enc.kv(&ev.KV, ev.Type == kvstore.EventPut),
			PrevKV: enc.kv(ev.PrevKV, true),
		})
	}
	if resp.Canceled {
		body := a.errorBody(watchErr(resp))
		body.CompactRevision = resp.CompactRevision
		msg.Error = &body
		return msg, ""
	}
	if resp.Created {
		return msg, ""
	}
	return msg, strconv.FormatInt(resp.Revision, 10)
}

func (a *api) errorBody(err error) errorBody {
	_, code := errorStatus(err)
	return newErrorBody(err, code)
}

// eventStream writes server-sent events to one response. Each write gets
// its own deadline, replacing the server's WriteTimeout, which is meant for
// whole responses and would cut every stream off after it. (No read
// deadline ends a stream: the server has no ReadTimeout, and the body
// timeout is set only while a body remains to be read, body.go;
// TestWatchOutlivesTimeouts covers both.)
type eventStream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	buf          bytes.Buffer
}

func newEventStream(w http.ResponseWriter, writeTimeout time.Duration) *eventStream {
	return &eventStream{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
}

// start sends the headers.
func (s *eventStream) start() error {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell nginx not to buffer the stream
	return s.flush(func() { s.w.WriteHeader(http.StatusOK) })
}

// send writes one event: an id line if id is set, and v as one data line.
func (s *eventStream) send(id string, v any) error {
	s.buf.Reset()
	if id != "" {
		fmt.Fprintf(&s.buf, "id: %s\n", id)
	}
	s.buf.WriteString("data: ")
	enc := json.NewEncoder(&s.buf) // Encode ends the line with \n
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	s.buf.WriteString("\n")
	return s.write(s.buf.Bytes())
}

// comment writes an SSE comment, which clients ignore.
func (s *eventStream) comment(text string) error {
	return s.write([]byte(": " + text + "\n\n"))
}

func (s *eventStream) write(p []byte) error {
	var err error
	if ferr := s.flush(func() { _, err = s.w.Write(p) }); err == nil {
		err = ferr
	}
	return err
}

// flush runs write under a fresh write deadline and flushes.
func (s *eventStream) flush(write func()) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	write()
	return s.rc.Flush()
}
