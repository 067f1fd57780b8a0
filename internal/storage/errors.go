package storage

import (
	"errors"
	"fmt"
)

// Errors of storage. The kvstore package exports each but ErrInUse under
// the same name (the same values), where their user-facing documentation
// lives.
var (
	// ErrCorruptLog reports a raft log holding an entry that fails its
	// checksum, or a raft-wal segment that cannot be read.
	ErrCorruptLog = errors.New("kvstore: corrupt raft log")
	// ErrCorruptSnapshot reports storage none of whose snapshots can
	// rebuild the node's state.
	ErrCorruptSnapshot = errors.New("kvstore: corrupt snapshot")
	// ErrClusterMismatch reports storage that belongs to another cluster
	// token or another node ID, or whose identity record is unreadable.
	ErrClusterMismatch = errors.New("kvstore: cluster mismatch")
	// ErrLogStoreMismatch reports a data dir holding the other kind of log
	// store. It matches ErrClusterMismatch too.
	ErrLogStoreMismatch = fmt.Errorf("%w: log store mismatch", ErrClusterMismatch)
	// ErrWALDirMismatch reports a data dir opened with another WAL dir than
	// the one its raft log is in (or with one when it keeps its log itself,
	// or without one when it does not), or whose WAL dir holds no log. It
	// matches ErrClusterMismatch too.
	ErrWALDirMismatch = fmt.Errorf("%w: WAL dir mismatch", ErrClusterMismatch)
	// ErrDataDirLocked reports a data dir that another open node uses.
	ErrDataDirLocked = errors.New("kvstore: data dir in use by another open node")
	// ErrNoSpace reports an append refused for lack of disk space.
	ErrNoSpace = errors.New("kvstore: no space left on device (ENOSPC)")
	// ErrSentUnstored reports an append that failed on a leader after its
	// entries were sent to followers (kvstore's eager replication): the
	// members that took them may still commit them. The kvstore package
	// reports it as ErrOutcomeUnknown.
	ErrSentUnstored = errors.New("kvstore: the raft log append failed after its entries were sent to followers, which may commit them")
	// ErrInUse reports a Memory already used by an open node.
	ErrInUse = errors.New("kvstore: memory storage already used by an open node")
)

// RemovedError reports storage that records its node's removal from the
// cluster (Storage.MarkRemoved): it is never served again. The kvstore
// package reports it as its ErrRemoved.
type RemovedError struct {
	Node, Cluster string
}

func (e *RemovedError) Error() string {
	return fmt.Sprintf("member %q of cluster %q was removed; wipe its data to join again", e.Node, e.Cluster)
}
