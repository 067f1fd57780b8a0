package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore"
)

// apiOptions tunes the HTTP API; the zero value of a field selects its
// default.
type apiOptions struct {
	logger *slog.Logger
	// requestTimeout bounds each request but watch streams (default 5s).
	// A write that runs out of time answers 504 and may still commit.
	requestTimeout time.Duration
	// maxBodyBytes bounds a request body (default twice kvstore's 1.5 MiB
	// request limit, room for a base64 txn of the largest request; the
	// node's own limit then answers 413 precisely).
	maxBodyBytes int64
	// healthTimeout bounds /healthz's linearizable read (default 1s).
	healthTimeout time.Duration
	// streamKeepAlive is how often an idle watch stream gets an SSE
	// comment, so that proxies keep it open and a client that went away
	// is noticed (default 15s). streamWriteTimeout bounds each write to a
	// watch stream (default 10s): a client that stops reading for longer
	// loses its stream.
	streamKeepAlive    time.Duration
	streamWriteTimeout time.Duration
	// maxStreams bounds the watch streams open at once (default 1,000,
	// limits.go; negative, noLimit: none): one more is refused with a 429.
	maxStreams int
	// bodyTimeout bounds the wait for a request's body (default 5s,
	// limits.go; negative, noLimit: none): a body not read in time is a 408
	// (body.go).
	bodyTimeout time.Duration
	// refusals counts what the limits refused (default: a new set of
	// counters).
	refusals *refusals
	// metrics, if set, is served at /metrics; pprof serves Go's profiles
	// under /debug/pprof/ (diagnostics.go).
	metrics prometheus.Gatherer
	pprof   bool
}

func (o apiOptions) withLogger(l *slog.Logger) apiOptions {
	o.logger = l
	return o
}

func (o apiOptions) withDefaults() apiOptions {
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.requestTimeout <= 0 {
		o.requestTimeout = 5 * time.Second
	}
	if o.maxBodyBytes <= 0 {
		o.maxBodyBytes = 2 * kvstore.DefaultMaxRequestBytes
	}
	if o.healthTimeout <= 0 {
		o.healthTimeout = time.Second
	}
	if o.streamKeepAlive <= 0 {
		o.streamKeepAlive = 15 * time.Second
	}
	if o.streamWriteTimeout <= 0 {
		o.streamWriteTimeout = 10 * time.Second
	}
	if o.maxStreams == 0 {
		o.maxStreams = defaultMaxStreams
	}
	if o.bodyTimeout == 0 {
		o.bodyTimeout = defaultBodyTimeout
	}
	if o.refusals == nil {
		o.refusals = new(refusals)
	}
	return o
}

// api is the HTTP JSON API of one node (README.md documents it). It is an
// http.Handler, safe for concurrent use; it starts no goroutine of its
// own, so it needs no Close beyond closeStreams.
type api struct {
	node *kvstore.Node
	opts apiOptions
	mux  *http.ServeMux

	// closing is closed by closeStreams: watch streams end on it.
	closing   chan struct{}
	closeOnce sync.Once
	// streams counts the watch streams open (watch.go).
	streams atomic.Int64
}

// newAPI returns the API of node. The node stays the caller's: the API
// never closes it.
func newAPI(node *kvstore.Node, opts apiOptions) *api {
	a := &api{node: node, opts: opts.withDefaults(), mux: http.NewServeMux(), closing: make(chan struct{})}
	a.mux.Handle("PUT /v1/kv/{key...}", a.handler(a.put))
	a.mux.Handle("GET /v1/kv/{key...}", a.handler(a.get))
	a.mux.Handle("DELETE /v1/kv/{key...}", a.handler(a.delete))
	a.mux.Handle("POST /v1/txn", a.handler(a.txn))
	a.mux.Handle("POST /v1/compact", a.handler(a.compact))
	a.mux.HandleFunc("GET /v1/watch/{key...}", a.watch)
	a.mux.Handle("POST /v1/lease", a.handler(a.leaseGrant))
	a.mux.Handle("GET /v1/lease", a.handler(a.leaseList))
	a.mux.Handle("GET /v1/lease/{id}", a.handler(a.leaseTimeToLive))
	a.mux.Handle("POST /v1/lease/{id}/keepalive", a.handler(a.leaseKeepAlive))
	a.mux.Handle("DELETE /v1/lease/{id}", a.handler(a.leaseRevoke))
	a.mux.Handle("GET /v1/status", a.handler(a.status))
	a.mux.Handle("GET /v1/hash", a.handler(a.hash))
	a.mux.HandleFunc("GET /v1/snapshot", a.snapshot)
	a.mux.Handle("GET /v1/alarms", a.handler(a.alarms))
	a.mux.Handle("POST /v1/alarms/disarm", a.handler(a.disarm))
	a.mux.Handle("GET /v1/members", a.handler(a.members))
	a.mux.Handle("DELETE /v1/members/{id}", a.handler(a.removeMember))
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /livez", a.probe("livez", node.LiveChecks))
	a.mux.HandleFunc("GET /livez/{check}", a.probe("livez", node.LiveChecks))
	a.mux.HandleFunc("GET /readyz", a.probe("readyz", node.ReadyChecks))
	a.mux.HandleFunc("GET /readyz/{check}", a.probe("readyz", node.ReadyChecks))
	a.routeDiagnostics()
	return a
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// closeStreams ends every watch stream, now and later, with a last
// "unavailable" message; http.Server.Shutdown waits for active requests,
// and a stream would otherwise never end. Safe to call more than once.
func (a *api) closeStreams() { a.closeOnce.Do(func() { close(a.closing) }) }

// jsonHandler serves one JSON endpoint: it reads its query through q and
// returns the response body, or an error that writeError maps to a status.
// Its request's context carries the request timeout.
type jsonHandler func(r *http.Request, q *query) (any, error)

func (a *api) handler(h jsonHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		a.limitBody(w, r)
		resp, err := h(r, newQuery(r))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// query reads a request's query parameters strictly: a handler reads the
// ones it accepts, then calls done, which reports the first malformed
// value, a parameter given twice, or one the handler did not read (a typo
// such as "perfix=1" must not silently read a single key). Handlers call
// done before doing anything, so a bad query changes nothing.
type query struct {
	values url.Values
	read   []string
	err    error
}

func newQuery(r *http.Request) *query {
	v, err := url.ParseQuery(r.URL.RawQuery)
	q := &query{values: v}
	if err != nil {
		q.err = fmt.Errorf("%w: query: %v", errBadRequest, err)
	}
	return q
}

func (q *query) fail(format string, args ...any) {
	if q.err == nil {
		q.err = fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
	}
}

// string returns the parameter's value and whether it was given.
func (q *query) string(name string) (string, bool) {
	q.read = append(q.read, name)
	vs, ok := q.values[name]
	if len(vs) > 1 {
		q.fail("query parameter %q given %d times", name, len(vs))
	}
	if !ok {
		return "", false
	}
	return vs[0], true
}

// flag reads a boolean parameter: absent, "0" or "false" is false; "1",
// "true" or no value at all ("?prefix") is true.
func (q *query) flag(name string) bool {
	s, ok := q.string(name)
	if !ok || s == "" {
		return ok
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		q.fail("%s=%q: want 1, 0, true or false", name, s)
	}
	return b
}

// int reads a non-negative integer parameter, 0 when absent.
func (q *query) int(name string) int64 {
	s, ok := q.string(name)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		q.fail("%s=%q: want a non-negative decimal integer", name, s)
	}
	return n
}

// encoding reads the encoding parameter (encoding.go).
func (q *query) encoding() encoding {
	s, _ := q.string("encoding")
	e, err := parseEncoding(s)
	if err != nil && q.err == nil {
		q.err = err
	}
	return e
}

// done reports what was wrong with the query, if anything.
func (q *query) done() error {
	if q.err != nil {
		return q.err
	}
	var unknown []string
	for name := range q.values {
		if !slices.Contains(q.read, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("%w: unknown query parameter %q (this endpoint takes: %s)",
			errBadRequest, unknown[0], strings.Join(q.read, ", "))
	}
	return nil
}

// decodeJSON reads the request body into v: one JSON value, no unknown
// fields, nothing after it.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty body, want a JSON object", errBadRequest)
		}
		return fmt.Errorf("%w: body: %w", errBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: body: data after the JSON object", errBadRequest)
	}
	return nil
}
