package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/kvstore/kvstore"
)

// TestErrorStatus pins the status and code of every error the API can
// meet, wrapped as kvstore and the handlers wrap them.
func TestErrorStatus(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{&http.MaxBytesError{Limit: 10}, 413, "request_too_large"},
		{fmt.Errorf("%w: body: %w", errBadRequest, &http.MaxBytesError{Limit: 10}), 413, "request_too_large"},
		{kvstore.ErrRequestTooLarge, 413, "request_too_large"},
		{errBodyTimeout, 408, "request_timeout"},
		{fmt.Errorf("%w: reading the value: %w", errBadRequest, errBodyTimeout), 408, "request_timeout"},
		{errTooManyStreams, 429, "too_many_streams"},
		{errBadRequest, 400, "bad_request"},
		{errInvalidTTL, 400, "invalid_ttl"},
		{kvstore.ErrEmptyKey, 400, "empty_key"},
		{kvstore.ErrDuplicateKey, 400, "duplicate_key"},
		{kvstore.ErrTooManyOps, 400, "too_many_ops"},
		{kvstore.ErrInvalidOpOption, 400, "invalid_argument"},
		{kvstore.ErrInvalidCompare, 400, "invalid_argument"},
		{kvstore.ErrInvalidOp, 400, "invalid_argument"},
		{kvstore.ErrTxnOrder, 400, "invalid_argument"},
		{kvstore.ErrInvalidSortOption, 400, "invalid_argument"},
		{kvstore.ErrInvalidWatchRange, 400, "invalid_argument"},
		{kvstore.ErrNegativeWatchRevision, 400, "invalid_argument"},
		{kvstore.ErrKeyNotFound, 400, "invalid_argument"},
		{kvstore.ErrValueProvided, 400, "invalid_argument"},
		{kvstore.ErrLeaseProvided, 400, "invalid_argument"},
		{kvstore.ErrInvalidMember, 400, "invalid_argument"},
		{kvstore.ErrInvalidLeaseID, 400, "invalid_lease_id"},
		{kvstore.ErrTTLTooLarge, 400, "ttl_too_large"},
		{kvstore.ErrFutureRevision, 400, "future_revision"},
		{kvstore.ErrCompacted, 410, "compacted"},
		{kvstore.ErrLeaseNotFound, 404, "lease_not_found"},
		{kvstore.ErrMemberNotFound, 404, "member_not_found"},
		{kvstore.ErrLeaseExists, 409, "lease_exists"},
		{kvstore.ErrMemberExists, 409, "member_exists"},
		{fmt.Errorf("%w: member n1 cannot append to its raft log", kvstore.ErrNoSpace), 507, "no_space"},
		{fmt.Errorf("%w: store 20000 bytes", kvstore.ErrDatabaseSpaceExceeded), 507, "database_space_exceeded"},
		{kvstore.ErrInvalidAlarm, 400, "invalid_argument"},
		{kvstore.ErrOutcomeUnknown, 503, "outcome_unknown"},
		{fmt.Errorf("%w: %w", kvstore.ErrOutcomeUnknown, context.DeadlineExceeded), 503, "outcome_unknown"},
		{kvstore.ErrNoLeader, 503, "no_leader"},
		{fmt.Errorf("%w: %w", kvstore.ErrLeaderUnreachable, context.DeadlineExceeded), 503, "no_leader"},
		{fmt.Errorf("%w: %w", kvstore.ErrNoLeader, context.DeadlineExceeded), 503, "no_leader"},
		{&kvstore.NotLeaderError{LeaderID: "n2"}, 503, "no_leader"},
		{kvstore.ErrClosed, 503, "unavailable"},
		{kvstore.ErrWatchClosed, 503, "unavailable"},
		{errShuttingDown, 503, "unavailable"},
		{fmt.Errorf("%w (the request may still take effect)", context.DeadlineExceeded), 504, "timeout"},
		{context.Canceled, 503, "canceled"},
		{kvstore.ErrClusterMismatch, 500, "internal"},
		{kvstore.ErrBadRPC, 500, "internal"},
		{errors.New("something else"), 500, "internal"},
	}
	for _, tc := range cases {
		status, code := errorStatus(fmt.Errorf("wrapped: %w", tc.err))
		if status != tc.status || code != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}

// TestClientMessage: the message a client reads names no package of this
// program or of kvstore, wherever wrapping put the prefix, and keeps the
// rest of the text, keys and addresses included.
func TestClientMessage(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{errBadRequest, "bad request"},
		{fmt.Errorf("%w: ttl is required (seconds)", errInvalidTTL), "invalid lease TTL: ttl is required (seconds)"},
		{fmt.Errorf("%w: %d", kvstore.ErrLeaseNotFound, 5), "lease not found: 5"},
		{kvstore.ErrEmptyKey, "key is not provided"},
		{fmt.Errorf("%w: %w", kvstore.ErrNoLeader, context.DeadlineExceeded), "no leader: context deadline exceeded"},
		{&kvstore.NotLeaderError{LeaderID: "n2", LeaderAddress: "127.0.0.1:2380"}, "not the leader (leader n2 at 127.0.0.1:2380)"},
		{fmt.Errorf("%w: unhealthy: %w", errUnhealthy, kvstore.ErrWatchClosed), "unhealthy: unhealthy: hub closed"},
		{fmt.Errorf("%w: key %q: %w", errBadRequest, "node: a", kvstore.ErrInvalidWatchRange), `bad request: key "node: a": range end sorts at or before key`},
		{fmt.Errorf("forward to n2: transport: unreachable: %w", kvstore.ErrOutcomeUnknown), "forward to n2: unreachable: outcome unknown: the write may or may not have been committed"},
		{errors.New("something else"), "something else"},
		{errors.New("kvstore"), "kvstore"},
	}
	for _, tc := range cases {
		if got := clientMessage(tc.err); got != tc.want {
			t.Errorf("clientMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
