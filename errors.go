package kvstore

import (
	"errors"
	"fmt"

	"github.com/kvstore/kvstore/internal/storage"
	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/transport"
	"github.com/kvstore/kvstore/watch"
)

// Errors returned by a Node. Each is matched with errors.Is; the mvcc and
// lease errors are the same values as in those packages, and those of the
// data dir and of node-to-node messages the same as internal/storage and
// internal/wire return.
var (
	// ErrClosed reports use of a closed node.
	ErrClosed = errors.New("kvstore: node closed")
	// ErrRemoved reports use of a node removed from its cluster, or a data
	// dir whose node was removed. It matches ErrClosed too.
	ErrRemoved = fmt.Errorf("%w: removed from the cluster", ErrClosed)
	// ErrNotLeader reports a request that needs the leader on a node that is
	// not; the error is a *NotLeaderError naming the leader when known.
	ErrNotLeader = errors.New("kvstore: not the leader")
	// ErrNoLeader reports that the cluster has no leader right now.
	ErrNoLeader = errors.New("kvstore: no leader")
	// ErrLeaderUnreachable reports a request that this node could not send
	// to the leader it knows (the dial was refused, the link is cut, the
	// leader is gone) and kept trying to send, to that leader or to a newly
	// elected one, until the request's context ended. The request certainly
	// did not reach any leader: it had no effect and may be retried as it
	// is, through this member or another.
	ErrLeaderUnreachable = errors.New("kvstore: leader unreachable; the request was not sent")
	// ErrOutcomeUnknown reports a write that may or may not have been
	// committed: the leader lost leadership after proposing it, its own
	// raft log append failed after it had sent the entry to its followers,
	// or the request reached the leader (or may have) and its answer was
	// lost. Never retry such a write blindly; read to find out.
	ErrOutcomeUnknown = errors.New("kvstore: outcome unknown: the write may or may not have been committed")
	// ErrRequestTooLarge reports a write larger than WithMaxRequestBytes.
	ErrRequestTooLarge = errors.New("kvstore: request too large")
	// ErrCorruptLog reports a data dir whose raft log holds an entry that
	// fails its checksum: the member must be wiped and join again (or be
	// restored from another member's backup).
	ErrCorruptLog = storage.ErrCorruptLog
	// ErrNoSpace reports a write refused because a member's disk is full
	// (ENOSPC): the leader could not append it to its raft log and had not
	// sent it to its followers, or the write was made through a member that
	// cannot. It certainly did not happen (a leader whose disk fills while
	// it writes an entry it already sent on reports ErrOutcomeUnknown)
	// and may be retried, through another member while that one's disk is
	// full. Such a member stops campaigning until its disk takes writes
	// again. ErrDatabaseSpaceExceeded, the store's quota, matches it too
	// (as etcd's one ErrNoSpace covers its quota): test for that first when
	// the two call for different handling.
	ErrNoSpace = storage.ErrNoSpace
	// ErrDatabaseSpaceExceeded reports a write that adds data (Put, a Txn
	// with a put, Grant) refused because the store reached its quota
	// (WithQuotaBytes) or a NOSPACE alarm is active: etcd's "mvcc:
	// database space exceeded". It matches ErrNoSpace too. The write
	// certainly did not happen; retrying does not help, on any member,
	// until the store is compacted and the alarm disarmed (DisarmAlarm).
	ErrDatabaseSpaceExceeded error = databaseSpaceExceeded{}
	// ErrCorrupt reports a read, watch or write refused by a member under
	// a CORRUPT alarm in its own name (corruption.go): its store was found
	// to disagree with the other members'. etcd's "etcdserver: corrupt
	// cluster". Other members serve; this one does once an operator has
	// repaired it and disarmed the alarm.
	ErrCorrupt = errors.New("kvstore: corrupt cluster")
	// ErrInvalidAlarm reports a DisarmAlarm naming no member or an unknown
	// alarm kind.
	ErrInvalidAlarm = errors.New("kvstore: invalid alarm")
	// ErrCorruptSnapshot reports a data dir none of whose snapshots can
	// rebuild the member's state: each is damaged, or older than the log
	// it would need (the log was compacted up to a newer, damaged one). The
	// member must be removed, wiped and added again (or restored from a
	// backup); the error says so.
	ErrCorruptSnapshot = storage.ErrCorruptSnapshot
	// ErrClusterMismatch reports a data dir, or a peer, that belongs to
	// another cluster (another cluster token) or another node ID.
	ErrClusterMismatch = storage.ErrClusterMismatch
	// ErrLogStoreMismatch reports a data dir whose raft log is of another
	// kind than WithLogStore asks for; opening it would start an empty
	// member beside the real log. It matches ErrClusterMismatch too.
	ErrLogStoreMismatch = storage.ErrLogStoreMismatch
	// ErrWALDirMismatch reports a data dir opened with another WAL dir than
	// the one it was created with (WithWALDir), with one when it keeps its
	// raft log itself or without one when it does not, or whose WAL dir
	// holds no raft log (a disk not mounted). Opening it would start a
	// member that forgot its log, term and vote. It matches
	// ErrClusterMismatch too.
	ErrWALDirMismatch = storage.ErrWALDirMismatch
	// ErrDataDirLocked reports a data dir that another open node, in this
	// process or another, is using. Open returns it at once.
	ErrDataDirLocked = storage.ErrDataDirLocked
	// ErrMemberExists reports adding a member whose ID or address is
	// already in the cluster.
	ErrMemberExists = errors.New("kvstore: member already exists")
	// ErrMemberNotFound reports a membership change naming an unknown ID.
	ErrMemberNotFound = errors.New("kvstore: member not found")
	// ErrInvalidMember reports a membership request with a missing ID or
	// address, a malformed address (the error matches ErrInvalidAddress
	// too), or one that names a learner as the next leader.
	ErrInvalidMember = errors.New("kvstore: invalid member")
	// ErrInvalidAddress reports a peer address that the node's transport
	// could never dial (transport.AddressValidator): a bootstrap peer's at
	// Open (with ErrInvalidOption), a member's to add or to join through
	// (with ErrInvalidMember). It is transport.ErrInvalidAddress.
	ErrInvalidAddress = transport.ErrInvalidAddress
	// ErrNotLearner reports promoting a member that is already a voter.
	ErrNotLearner = errors.New("kvstore: member is not a learner")
	// ErrLearnerNotReady reports promoting a learner that has not caught
	// up with the leader's log (learnerready.go), etcd's
	// ErrLearnerNotReady. Nothing changed; promote it again once it has.
	ErrLearnerNotReady = errors.New("kvstore: learner has not caught up with the leader")
	// ErrInvalidOption reports an option with a value Open cannot use; the
	// error names the option.
	ErrInvalidOption = errors.New("kvstore: invalid option")
	// ErrBadRPC reports a node-to-node message that could not be read:
	// members running incompatible versions, or a corrupted message.
	ErrBadRPC = wire.ErrBadRPC

	// ErrNotReady reports a failed readiness check (Node.Ready); the error
	// names the check and its cause.
	ErrNotReady = errors.New("kvstore: not ready")

	// ErrCorruptBackup reports a backup that cannot be read: bad magic, an
	// unknown format version, a checksum mismatch, a truncated stream or an
	// inconsistent record (backup.go). Restore writes nothing on it.
	ErrCorruptBackup = errors.New("kvstore: corrupt backup")
	// ErrDataDirNotEmpty reports a Restore into a dir that already holds
	// files; it is left as it was.
	ErrDataDirNotEmpty = errors.New("kvstore: data dir not empty")

	ErrCompacted         = mvcc.ErrCompacted
	ErrFutureRevision    = mvcc.ErrFutureRevision
	ErrEmptyKey          = mvcc.ErrEmptyKey
	ErrKeyNotFound       = mvcc.ErrKeyNotFound
	ErrValueProvided     = mvcc.ErrValueProvided
	ErrLeaseProvided     = mvcc.ErrLeaseProvided
	ErrDuplicateKey      = mvcc.ErrDuplicateKey
	ErrTooManyOps        = mvcc.ErrTooManyOps
	ErrInvalidSortOption = mvcc.ErrInvalidSortOption
	ErrLeaseNotFound     = lease.ErrLeaseNotFound
	ErrLeaseExists       = lease.ErrLeaseExists
	ErrTTLTooLarge       = lease.ErrTTLTooLarge
	ErrInvalidLeaseID    = lease.ErrInvalidID
	// ErrInvalidWatchRange, ErrNegativeWatchRevision: Watch's bad requests.
	// ErrWatchClosed ends the watches of a node that closes.
	ErrInvalidWatchRange     = watch.ErrInvalidRange
	ErrNegativeWatchRevision = watch.ErrNegativeRevision
	ErrWatchClosed           = watch.ErrClosed
)

// databaseSpaceExceeded is ErrDatabaseSpaceExceeded: its own text (the
// disk is not full), matching ErrNoSpace.
type databaseSpaceExceeded struct{}

func (databaseSpaceExceeded) Error() string        { return "kvstore: database space exceeded" }
func (databaseSpaceExceeded) Is(target error) bool { return target == ErrNoSpace }

// NotLeaderError is returned for ErrNotLeader; it names the leader when
// this node knows it.
type NotLeaderError struct {
	LeaderID      string
	LeaderAddress string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNotLeader.Error() + " (leader unknown)"
	}
	return fmt.Sprintf("%s (leader %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddress)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Errors of Txn, reported by Commit before anything is proposed or read:
// the txn then changes nothing.
var (
	// ErrInvalidCompare reports a Cmp that Compare could not build: an
	// unknown result operator, an operand of the wrong type or out of range,
	// or a target (Value, Version, ...) never passed through Compare.
	ErrInvalidCompare = errors.New("kvstore: invalid compare")
	// ErrInvalidOpOption reports an OpOption given to an op it does not
	// apply to, such as WithLease on OpGet or WithPrefix on OpPut, or
	// WithPrefix together with WithFromKey.
	ErrInvalidOpOption = errors.New("kvstore: option does not apply to this op")
	// ErrTxnOrder reports If, Then or Else called twice or out of order
	// (clientv3 panics instead).
	ErrTxnOrder = errors.New("kvstore: If, Then and Else may each be called once, in that order")
	// ErrInvalidOp reports an Op not built by OpGet, OpPut, OpDelete or
	// OpTxn (the zero Op).
	ErrInvalidOp = mvcc.ErrInvalidOp
)

// errClosed is the error for a call on a node that no longer serves:
// ErrRemoved if it was removed, ErrClosed otherwise.
func (n *Node) errClosed() error {
	if n.removed.Load() {
		return ErrRemoved
	}
	return ErrClosed
}

// invalid builds an option error: ErrInvalidOption naming the option.
func invalid(option, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, option, fmt.Sprintf(format, args...))
}
