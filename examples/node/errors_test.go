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
