package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// limitBody bounds the body of r before a handler reads it: at most
// maxBodyBytes (reading more fails with *http.MaxBytesError, a 413), and,
// for a request that has a body, all of it within bodyTimeout of now
// (reading later fails with errBodyTimeout, a 408). The deadline is the
// connection's read deadline: a client that trickles its body, or stops
// sending it, is cut off and its handler's goroutine returns.
//
// The deadline is set only when a body remains to be read, and cleared as
// soon as it has been read, for net/http's sake: once a request's body is
// read, the server keeps a background read on the connection to notice a
// client going away, and a read deadline expiring in that read cancels the
// request's context. Requests without a body (watch streams) never get the
// deadline. (The server sets no ReadTimeout: it would count from the
// request's first byte, headers included, and a stream would outlive it
// only because net/http happens to clear it when the background read
// starts.) The server resets the read deadline for the next request on
// the connection.
func (a *api) limitBody(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, a.opts.maxBodyBytes)
	if r.ContentLength == 0 || a.opts.bodyTimeout < 0 {
		return // no body (http.NoBody), or no timeout
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(a.opts.bodyTimeout)); err != nil {
		return // http.ErrNotSupported: not a connection of net/http's server
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: a.opts.bodyTimeout}
}

// deadlineBody reads a body under a read deadline (limitBody), reports the
// deadline's expiry as errBodyTimeout, and clears the deadline at the end
// of the body.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	cleared bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF) && !b.cleared:
		b.cleared = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w within %v: %w", errBodyTimeout, b.timeout, err)
	}
	return n, err
}
