package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/kvstore/kvstore"
)

// Errors of the program and of its HTTP API; kvstore's own sentinels
// (kvstore.ErrXxx) are matched in errorStatus.
var (
	// errUsage reports a bad command line; the program exits with status 2.
	errUsage = errors.New("node: bad command line")
	// errUnhealthy is what /healthz reports when the node cannot serve.
	errUnhealthy = errors.New("node: unhealthy")
	// errBadRequest reports input the API could not read: an unknown or
	// repeated query parameter, a malformed number, a JSON body that does
	// not decode, a txn that names an unknown compare target.
	errBadRequest = errors.New("node: bad request")
	// errInvalidTTL reports a lease grant without a TTL. (A TTL below the
	// minimum is raised to it, not refused; one above lease.MaxTTL is
	// kvstore.ErrTTLTooLarge.)
	errInvalidTTL = errors.New("node: invalid lease TTL")
	// errShuttingDown ends watch streams when the server shuts down.
	errShuttingDown = errors.New("node: server shutting down")
	// errBodyTimeout reports a request body that did not arrive within
	// the body timeout (body.go).
	errBodyTimeout = errors.New("node: request body not received in time")
	// errTooManyStreams refuses a watch stream over the stream limit.
	errTooManyStreams = errors.New("node: too many watch streams")
	// errTooManyConnections is what a connection over the connection
	// limit is answered (connlimit.go).
	errTooManyConnections = errors.New("node: too many client connections")
)

// errorBody is the JSON body of every error answer: a message for people
// and a stable code for programs. Build it with newErrorBody.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// CompactRevision is the store's compact revision, for code
	// "compacted" on a watch.
	CompactRevision int64 `json:"compact_revision,omitempty"`
}

// internalPrefixes are the package names that open the error strings of
// this program and of kvstore ("node: ", "kvstore: ", "mvcc: ", ...), as
// Go's convention has them. They help whoever reads a log, not a client:
// a client gets the message without them, and the code says what it is.
var internalPrefixes = []string{"node", "kvstore", "mvcc", "lease", "watch", "transport"}

// clientMessage is err's message for a client: its text with every
// internal package prefix removed, wherever wrapping put one ("node: bad
// request: kvstore: ..." reads "bad request: ..."). Only whole segments
// between ": " separators are removed, so a key or an address in the text
// stays as it is.
func clientMessage(err error) string {
	segments := strings.Split(err.Error(), ": ")
	kept := slices.DeleteFunc(segments, func(s string) bool { return slices.Contains(internalPrefixes, s) })
	if len(kept) == 0 {
		return err.Error()
	}
	return strings.Join(kept, ": ")
}

// newErrorBody is the body of an error answer: err's message for clients
// (clientMessage) and code.
func newErrorBody(err error, code string) errorBody {
	return errorBody{Error: clientMessage(err), Code: code}
}

// errorStatus maps err to an HTTP status and a code. The order matters
// where an error could match two rows: the most specific comes first.
func errorStatus(err error) (status int, code string) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), errors.Is(err, kvstore.ErrRequestTooLarge):
		return http.StatusRequestEntityTooLarge, "request_too_large"
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout, "request_timeout"
	case errors.Is(err, errTooManyStreams):
		return http.StatusTooManyRequests, "too_many_streams"
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, errInvalidTTL):
		return http.StatusBadRequest, "invalid_ttl"
	case errors.Is(err, kvstore.ErrEmptyKey):
		return http.StatusBadRequest, "empty_key"
	case errors.Is(err, kvstore.ErrDuplicateKey):
		return http.StatusBadRequest, "duplicate_key"
	case errors.Is(err, kvstore.ErrTooManyOps):
		return http.StatusBadRequest, "too_many_ops"
	case errors.Is(err, kvstore.ErrInvalidOpOption), errors.Is(err, kvstore.ErrInvalidCompare),
		errors.Is(err, kvstore.ErrInvalidOp), errors.Is(err, kvstore.ErrTxnOrder),
		errors.Is(err, kvstore.ErrInvalidSortOption), errors.Is(err, kvstore.ErrInvalidWatchRange),
		errors.Is(err, kvstore.ErrNegativeWatchRevision), errors.Is(err, kvstore.ErrKeyNotFound),
		errors.Is(err, kvstore.ErrValueProvided), errors.Is(err, kvstore.ErrLeaseProvided),
		errors.Is(err, kvstore.ErrInvalidMember):
		return http.StatusBadRequest, "invalid_argument"
	case errors.Is(err, kvstore.ErrInvalidLeaseID):
		return http.StatusBadRequest, "invalid_lease_id"
	case errors.Is(err, kvstore.ErrTTLTooLarge):
		return http.StatusBadRequest, "ttl_too_large"
	case errors.Is(err, kvstore.ErrFutureRevision):
		return http.StatusBadRequest, "future_revision"
	case errors.Is(err, kvstore.ErrCompacted):
		return http.StatusGone, "compacted"
	case errors.Is(err, kvstore.ErrLeaseNotFound):
		return http.StatusNotFound, "lease_not_found"
	case errors.Is(err, kvstore.ErrMemberNotFound):
		return http.StatusNotFound, "member_not_found"
	case errors.Is(err, kvstore.ErrLeaseExists):
		return http.StatusConflict, "lease_exists"
	case errors.Is(err, kvstore.ErrMemberExists):
		return http.StatusConflict, "member_exists"
	case errors.Is(err, kvstore.ErrDatabaseSpaceExceeded):
		// The store reached its quota (a NOSPACE alarm): no member takes
		// the write until it is compacted and the alarm disarmed. etcd
		// says "mvcc: database space exceeded".
		return http.StatusInsufficientStorage, "database_space_exceeded"
	case errors.Is(err, kvstore.ErrInvalidAlarm):
		return http.StatusBadRequest, "invalid_argument"
	case errors.Is(err, kvstore.ErrNoSpace):
		// The member's disk is full: nothing was written; another member
		// may take the write.
		return http.StatusInsufficientStorage, "no_space"
	case errors.Is(err, kvstore.ErrOutcomeUnknown):
		// The write may have committed: the code tells programs not to
		// retry it blindly, whatever the status invites.
		return http.StatusServiceUnavailable, "outcome_unknown"
	case errors.Is(err, kvstore.ErrNoLeader), errors.Is(err, kvstore.ErrNotLeader), errors.Is(err, kvstore.ErrLeaderUnreachable):
		// Nothing was sent to a leader: the request may be retried as it is.
		return http.StatusServiceUnavailable, "no_leader"
	case errors.Is(err, kvstore.ErrClosed), errors.Is(err, kvstore.ErrWatchClosed), errors.Is(err, errShuttingDown):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		// A write that timed out may still commit, as kvstore documents.
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "canceled"
	}
	return http.StatusInternalServerError, "internal"
}

// explainTimeout adds ErrNoLeader to a request that ran out of time while
// this node knows no leader: kvstore waits for a leader until the deadline,
// and reports the wait as ErrNoLeader on some paths but as the bare
// deadline on others (a linearizable read whose read-index round was still
// in flight). Either way the client should hear "no leader, retry" (503),
// not "timeout" (504).
func (a *api) explainTimeout(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kvstore.ErrNoLeader) &&
		!errors.Is(err, kvstore.ErrLeaderUnreachable) && !errors.Is(err, kvstore.ErrOutcomeUnknown) &&
		a.node.Status().LeaderID == "" {
		return fmt.Errorf("%w: %w", kvstore.ErrNoLeader, err)
	}
	return err
}

// retryable reports codes after which the same request may be sent again
// once the cluster has a leader, or a watch stream has closed: nothing was
// proposed.
func retryable(code string) bool {
	return code == "no_leader" || code == "unavailable" || code == "too_many_streams"
}

// writeError answers with err's status and JSON body, and logs server-side
// failures.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = a.explainTimeout(err)
	status, code := errorStatus(err)
	body := newErrorBody(err, code)
	if code == "compacted" {
		body.CompactRevision = a.node.Status().CompactRevision
	}
	if retryable(code) {
		w.Header().Set("Retry-After", "1")
	}
	switch code {
	case "request_too_large":
		count(&a.opts.refusals.largeBodies)
	case "request_timeout":
		// The rest of the body may still come: the connection is done.
		w.Header().Set("Connection", "close")
		if total, log := count(&a.opts.refusals.slowBodies); log {
			a.opts.logger.Warn("request body timeout: cutting off slow clients",
				"timeout", a.opts.bodyTimeout, "refused_so_far", total, "remote", r.RemoteAddr)
		}
	}
	level := slog.LevelDebug
	if status >= 500 && code != "canceled" {
		level = slog.LevelWarn
	}
	a.opts.logger.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "code", code, "err", err)
	writeJSON(w, status, body)
}

// writeJSON answers with status and v as JSON (one line, HTML characters
// left as they are, so that curl shows values verbatim).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a failed write means the client went away
}
