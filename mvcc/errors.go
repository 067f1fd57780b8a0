package mvcc

import "errors"

// Errors returned by the store. Each is a sentinel matched with errors.Is; the
// store may wrap them with detail.
var (
	// ErrCompacted reports a read, a watch history request or a compaction at
	// a revision that has been compacted away.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRevision reports a read or compaction above the current revision.
	ErrFutureRevision = errors.New("mvcc: required revision is a future revision")
	// ErrEmptyKey reports an empty key in a put, range, delete or compare.
	ErrEmptyKey = errors.New("mvcc: key is not provided")
	// ErrKeyNotFound reports a put with IgnoreValue or IgnoreLease on a key
	// that does not exist.
	ErrKeyNotFound = errors.New("mvcc: key not found")
	// ErrValueProvided reports a put with IgnoreValue and a non-empty value.
	ErrValueProvided = errors.New("mvcc: value is provided")
	// ErrValueTooLarge reports a value longer than MaxValueSize.
	ErrValueTooLarge = errors.New("mvcc: value too large")
	// ErrLeaseProvided reports a put with IgnoreLease and a non-zero lease.
	ErrLeaseProvided = errors.New("mvcc: lease is provided")
	// ErrLeaseNotFound reports a put that names a lease the store's
	// [Config.CheckLease] does not know. When CheckLease is set, its own
	// error is returned instead.
	ErrLeaseNotFound = errors.New("mvcc: lease not found")
	// ErrDuplicateKey reports a txn that writes one key twice along one of
	// its paths (SEMANTICS.md rule 15).
	ErrDuplicateKey = errors.New("mvcc: duplicate key given in txn request")
	// ErrTooManyOps reports a txn list longer than the store's MaxTxnOps
	// (SEMANTICS.md rule 16).
	ErrTooManyOps = errors.New("mvcc: too many operations in txn request")
	// ErrInvalidSortOption reports an unknown sort order or sort target.
	ErrInvalidSortOption = errors.New("mvcc: invalid sort option")
	// ErrInvalidOp reports a txn op that holds no request or more than one.
	ErrInvalidOp = errors.New("mvcc: txn op must hold exactly one request")
	// ErrCorruptSnapshot reports a snapshot that cannot be restored: bad
	// magic, unknown format version, checksum mismatch, truncation or an
	// inconsistent record.
	ErrCorruptSnapshot = errors.New("mvcc: corrupt snapshot")
	// ErrClosed reports use of a closed store.
	ErrClosed = errors.New("mvcc: store closed")
)
