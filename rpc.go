package kvstore

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
)

// Node-to-node calls (internal/wire has their messages) carry errors and
// results. This file is how the node's own errors and apply results cross:
// an error as the code of the sentinel it wraps plus its text, rebuilt on
// the other side as an error that errors.Is matches.

// wireErrors lists the errors a reply can carry by code. Codes are
// positions in this list: only append to it.
var wireErrors = [...]error{
	nil, // 0: an error with no known sentinel
	ErrNotLeader, ErrNoLeader, ErrOutcomeUnknown, ErrRequestTooLarge, ErrClosed,
	mvcc.ErrCompacted, mvcc.ErrFutureRevision, mvcc.ErrEmptyKey, mvcc.ErrKeyNotFound,
	mvcc.ErrValueProvided, mvcc.ErrValueTooLarge, mvcc.ErrLeaseProvided, mvcc.ErrLeaseNotFound,
	mvcc.ErrDuplicateKey, mvcc.ErrTooManyOps, mvcc.ErrInvalidSortOption, mvcc.ErrInvalidOp,
	lease.ErrLeaseNotFound, lease.ErrLeaseExists, lease.ErrTTLTooLarge, lease.ErrInvalidID,
	lease.ErrNotLeader, lease.ErrLeaseExpired, wire.ErrBadCommand,
	context.DeadlineExceeded, context.Canceled, ErrClusterMismatch,
	ErrMemberExists, ErrMemberNotFound, ErrNotLearner, ErrBadRPC, ErrInvalidMember,
	errLeaderNotReady, ErrRemoved, ErrNoSpace, ErrLeaderUnreachable,
	ErrDatabaseSpaceExceeded, ErrCorrupt,
	auth.ErrRootUserNotExist, auth.ErrRootRoleNotExist, auth.ErrUserAlreadyExist, auth.ErrUserEmpty,
	auth.ErrUserNotFound, auth.ErrRoleAlreadyExist, auth.ErrRoleNotFound, auth.ErrRoleEmpty,
	auth.ErrAuthFailed, auth.ErrPermissionDenied, auth.ErrRoleNotGranted, auth.ErrPermissionNotGranted,
	auth.ErrInvalidPermission, auth.ErrAuthNotEnabled, auth.ErrInvalidAuthToken, auth.ErrInvalidAuthMgmt,
	auth.ErrAuthOldRevision, ErrLearnerNotReady,
}

// toWireError is err as a reply carries it; nil for nil.
func toWireError(err error) *wire.Error {
	if err == nil {
		return nil
	}
	w := &wire.Error{Message: err.Error()}
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		w.LeaderID, w.LeaderAddress = nl.LeaderID, nl.LeaderAddress
	}
	// The most specific sentinel the error matches: one that no other
	// match wraps (lease.ErrLeaseExpired, not the ErrLeaseNotFound it wraps).
	for code, target := range wireErrors {
		if target == nil || !errors.Is(err, target) {
			continue
		}
		if w.Code == 0 || errors.Is(target, wireErrors[w.Code]) {
			w.Code = code
		}
	}
	return w
}

// fromWireError rebuilds the error a reply carries; nil for none. A code
// this build does not know keeps only the text.
func fromWireError(w *wire.Error) error {
	if w == nil {
		return nil
	}
	if w.Code > 0 && w.Code < len(wireErrors) {
		if wireErrors[w.Code] == ErrNotLeader {
			return &NotLeaderError{LeaderID: w.LeaderID, LeaderAddress: w.LeaderAddress}
		}
		return &remoteError{message: w.Message, sentinel: wireErrors[w.Code]}
	}
	return &remoteError{message: w.Message}
}

// remoteError is an error that happened on another member: its text is the
// remote one, and errors.Is matches the sentinel it wrapped there.
type remoteError struct {
	message  string
	sentinel error
}

func (e *remoteError) Error() string { return e.message }
func (e *remoteError) Unwrap() error { return e.sentinel }

// resultToWire is r as a reply carries it (its events and error stay
// behind: the error travels as the reply's).
func resultToWire(r *applyResult) *wire.Result {
	return &wire.Result{Revision: r.Revision, Put: r.Put, Delete: r.Delete, Txn: r.Txn, LeaseTTL: r.LeaseTTL}
}

// resultFromWire is the applyResult a reply carries; empty for none.
func resultFromWire(w *wire.Result) *applyResult {
	if w == nil {
		return &applyResult{}
	}
	return &applyResult{Revision: w.Revision, Put: w.Put, Delete: w.Delete, Txn: w.Txn, LeaseTTL: w.LeaseTTL}
}
