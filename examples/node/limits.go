package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kvstore/kvstore"
)

// limits bound what clients of the HTTP API can hold of a node: open
// connections, watch streams, the time to send a request, request sizes.
// Each has a flag (config.go) and a default below. A count or a duration of
// zero means no limit; sizes must be positive.
//
// Where each is enforced: maxConnections by the listener (connlimit.go, a
// 503 over it), maxStreams by the watch handler (a 429 before any event),
// bodyTimeout and the body size by every handler that reads a body
// (body.go: a 408, a 413), headerTimeout, idleTimeout and maxHeaderBytes by
// net/http (newHTTPServer).
type limits struct {
	// maxConnections bounds the client connections open at once.
	maxConnections int
	// maxStreams bounds the watch streams open at once.
	maxStreams int
	// headerTimeout bounds the wait for a request's headers, from the
	// connection's first byte (or its accept, for its first request).
	headerTimeout time.Duration
	// bodyTimeout bounds the wait for a request's body, from the moment
	// its headers were read.
	bodyTimeout time.Duration
	// idleTimeout is how long a keep-alive connection may wait for its
	// next request.
	idleTimeout time.Duration
	// maxHeaderBytes bounds the request line and headers, key included.
	maxHeaderBytes int
	// maxRequestBytes is kvstore's limit on one encoded write
	// (kvstore.WithMaxRequestBytes); a request body may be twice as large
	// (bodyBytes).
	maxRequestBytes int
}

// The defaults, and why.
const (
	// defaultMaxConnections: an idle keep-alive connection costs the
	// server about 19 KB (its goroutine's stack and net/http's 4 KB read
	// and write buffers; measured with Go 1.26 on linux/amd64), so 4,096
	// of them hold about 80 MB at worst, and they need 4,096 file
	// descriptors, far below the hard limit of most systems (Go raises
	// the soft limit to it at startup). Clients that pool connections use
	// a few each; a node with its default 1,000 watch streams (one
	// connection each, HTTP/1.1) still has 3,000 for requests.
	defaultMaxConnections = 4096
	// defaultMaxStreams: a watch stream costs about 37 KB, its connection
	// included (the operator's measurement, from 3,000 streams: 110 MB),
	// so 1,000 hold about 37 MB, a bounded share of a node. A deployment
	// with more watchers raises it knowingly, or watches prefixes instead
	// of many single keys.
	defaultMaxStreams = 1000
	// defaultHeaderTimeout: headers are a few hundred bytes, sent at once
	// by every real client; 5 s is generous even across a slow network,
	// and bounds a client that connects and sends nothing.
	defaultHeaderTimeout = 5 * time.Second
	// defaultBodyTimeout matches the 5 s each request gets to complete
	// (apiOptions.requestTimeout, counted from the same moment): a body
	// that arrives later could not be served in time anyway. It asks
	// 630 KB/s of a client sending the largest body (3 MiB). Without it, a
	// client that trickles a body holds its handler's goroutine until the
	// body ends.
	defaultBodyTimeout = 5 * time.Second
	// defaultIdleTimeout keeps a pooled connection across the gaps of a
	// client that calls now and then, and frees it within minutes.
	defaultIdleTimeout = 2 * time.Minute
	// defaultMaxHeaderBytes: room for a key of tens of KB in the URL;
	// net/http's own default (1 MiB) is more than any client needs.
	defaultMaxHeaderBytes = 64 << 10
)

func defaultLimits() limits {
	return limits{
		maxConnections:  defaultMaxConnections,
		maxStreams:      defaultMaxStreams,
		headerTimeout:   defaultHeaderTimeout,
		bodyTimeout:     defaultBodyTimeout,
		idleTimeout:     defaultIdleTimeout,
		maxHeaderBytes:  defaultMaxHeaderBytes,
		maxRequestBytes: kvstore.DefaultMaxRequestBytes,
	}
}

// validate reports the first limit out of range, naming its flag.
func (l limits) validate() error {
	for _, c := range []struct {
		flag string
		n    int64
	}{
		{"--client-max-connections", int64(l.maxConnections)},
		{"--max-concurrent-streams", int64(l.maxStreams)},
		{"--client-header-timeout", int64(l.headerTimeout)},
		{"--client-body-timeout", int64(l.bodyTimeout)},
		{"--client-idle-timeout", int64(l.idleTimeout)},
	} {
		if c.n < 0 {
			return usageError("%s must not be negative (0: no limit)", c.flag)
		}
	}
	if l.maxHeaderBytes <= 0 {
		return usageError("--client-max-header-bytes must be positive")
	}
	if l.maxRequestBytes <= 0 {
		return usageError("--max-request-bytes must be positive")
	}
	return nil
}

// bodyBytes is the largest request body: twice the node's request limit,
// room for a txn of the largest request in base64 JSON; kvstore's own
// limit then answers 413 precisely.
func (l limits) bodyBytes() int64 { return 2 * int64(l.maxRequestBytes) }

// requestReadBytes is the most the server reads of one request: its
// headers (net/http allows 4 KiB over MaxHeaderBytes) and the largest body.
func (l limits) requestReadBytes() int64 { return int64(l.maxHeaderBytes) + 4<<10 + l.bodyBytes() }

// applyTo returns o with the limits the API enforces itself.
func (l limits) applyTo(o apiOptions) apiOptions {
	o.maxBodyBytes = l.bodyBytes()
	o.maxStreams = l.maxStreams
	if l.maxStreams == 0 {
		o.maxStreams = noLimit
	}
	o.bodyTimeout = l.bodyTimeout
	if l.bodyTimeout == 0 {
		o.bodyTimeout = noLimit
	}
	return o
}

// noLimit (any negative value), in an apiOptions field whose zero value
// selects a default, means no limit.
const noLimit = -1

// refusals counts what the limits refused, since the process started. It
// is safe for concurrent use. Each field is meant to become one metric
// when the node exports metrics (a counter function over Load, for
// instance), so adding one is one line.
type refusals struct {
	// connections refused over the connection limit (503).
	connections atomic.Int64
	// streams refused over the watch stream limit (429).
	streams atomic.Int64
	// slowBodies cut off by the body timeout (408).
	slowBodies atomic.Int64
	// largeBodies refused by the body size or the node's request limit
	// (413).
	largeBodies atomic.Int64
}

// count adds one to c and reports whether this refusal should be logged:
// the 1st, 2nd, 4th, 8th and so on, so that a flood shows in the log
// without flooding it (the counters say how many).
func count(c *atomic.Int64) (total int64, log bool) {
	n := c.Add(1)
	return n, n&(n-1) == 0
}

func (l limits) String() string {
	return fmt.Sprintf("connections %d, streams %d, header %v, body %v, idle %v, header bytes %d, request bytes %d",
		l.maxConnections, l.maxStreams, l.headerTimeout, l.bodyTimeout, l.idleTimeout, l.maxHeaderBytes, l.maxRequestBytes)
}
