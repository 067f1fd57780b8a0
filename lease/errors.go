package lease

import (
	"errors"
	"fmt"
)

// Errors returned by the package. Each is a sentinel matched with errors.Is;
// functions may wrap them with detail.
var (
	// ErrLeaseNotFound reports an operation on a lease that does not exist
	// (never granted, or already revoked), or, from Expirer, one it does not
	// track.
	ErrLeaseNotFound = errors.New("lease: lease not found")

	// ErrLeaseExpired reports a renewal of a lease whose deadline has passed:
	// its revoke is pending and it can no longer be kept alive. It wraps
	// ErrLeaseNotFound, so callers that do not care about the difference can
	// match that; a caller that wants etcd's exact behaviour waits for the
	// revoke to be applied (or for a leader change) before answering.
	ErrLeaseExpired = fmt.Errorf("%w: expired, revoke pending", ErrLeaseNotFound)

	// ErrLeaseExists reports a grant of an ID that names a live lease.
	ErrLeaseExists = errors.New("lease: lease already exists")

	// ErrTTLTooLarge reports a grant with a TTL above MaxTTL.
	ErrTTLTooLarge = errors.New("lease: TTL is too large")

	// ErrInvalidID reports lease ID 0 (NoLease) where a lease is
	// required. ID 0 means "assign one" and must be resolved by the proposer
	// before the command is logged.
	ErrInvalidID = errors.New("lease: invalid lease ID")

	// ErrNotLeader reports a renewal sent to an Expirer that is not promoted:
	// only the leader tracks deadlines.
	ErrNotLeader = errors.New("lease: not the leader")

	// ErrCorruptSnapshot reports a snapshot that cannot be restored: bad magic,
	// truncated input, a checksum mismatch or contents that break the table's
	// invariants.
	ErrCorruptSnapshot = errors.New("lease: corrupt snapshot")

	// ErrSnapshotVersion reports a snapshot written in a format version this
	// package does not know.
	ErrSnapshotVersion = errors.New("lease: unsupported snapshot version")
)
