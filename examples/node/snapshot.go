package main

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// GET /v1/snapshot streams a backup of the node (kvstore's Node.Backup):
// "node snapshot save" downloads it. The response is application/octet-
// stream; its trailers X-Kvstore-Revision and X-Kvstore-Backup-Size say
// what was sent. A failure before the first byte answers with the usual
// JSON error; one midway aborts the connection, so the client sees a
// truncated body (which the backup's checksum rejects in any case).
//
// The transfer is bounded by no request timeout; each write must be taken
// by the client within the stream write timeout, as for watch streams.
func (a *api) snapshot(w http.ResponseWriter, r *http.Request) {
	if err := newQuery(r).done(); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Trailer", "X-Kvstore-Revision, X-Kvstore-Backup-Size")
	out := &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: a.opts.streamWriteTimeout}
	info, err := a.node.Backup(r.Context(), out)
	if err != nil {
		if out.written == 0 {
			a.writeError(w, r, err)
			return
		}
		a.opts.logger.Warn("backup stream failed", "component", "http", "err", err, "bytes", out.written)
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("X-Kvstore-Revision", strconv.FormatInt(info.Revision, 10))
	w.Header().Set("X-Kvstore-Backup-Size", strconv.FormatInt(info.Size, 10))
	a.opts.logger.Info("backup sent", "revision", info.Revision, "bytes", info.Size)
}

// deadlineWriter gives each write to a response its own write deadline.
type deadlineWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	written int64
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	n, err := d.w.Write(p)
	d.written += int64(n)
	return n, err
}
