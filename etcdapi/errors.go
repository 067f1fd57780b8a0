package etcdapi

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorMap pairs kvstore's errors with the gRPC errors etcd answers in
// the same case; clientv3 turns each back into its rpctypes error. The
// first match wins, so the more specific errors come first.
var errorMap = []struct {
	kv   error
	grpc error
}{
	{kvstore.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{kvstore.ErrFutureRevision, rpctypes.ErrGRPCFutureRev},
	{kvstore.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{kvstore.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{kvstore.ErrValueProvided, rpctypes.ErrGRPCValueProvided},
	{kvstore.ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
	{kvstore.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{kvstore.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{kvstore.ErrInvalidSortOption, rpctypes.ErrGRPCInvalidSortOption},
	{kvstore.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{kvstore.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{kvstore.ErrTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{kvstore.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	// The quota's refusal, and a member's full disk: etcd answers both
	// with its one NOSPACE error, which clientv3 reports as
	// rpctypes.ErrNoSpace.
	{kvstore.ErrDatabaseSpaceExceeded, rpctypes.ErrGRPCNoSpace},
	{kvstore.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	// A member under its own CORRUPT alarm: clientv3's rpctypes.ErrCorrupt.
	{kvstore.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{kvstore.ErrMemberExists, rpctypes.ErrGRPCMemberExist},
	{kvstore.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{kvstore.ErrNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{kvstore.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	// The request was not applied and may be retried: clientv3 retries
	// Unavailable errors on another endpoint.
	{kvstore.ErrNotLeader, rpctypes.ErrGRPCNoLeader},
	{kvstore.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{kvstore.ErrLeaderUnreachable, rpctypes.ErrGRPCNoLeader},
	{kvstore.ErrOutcomeUnknown, rpctypes.ErrGRPCTimeout},
	{kvstore.ErrClosed, rpctypes.ErrGRPCStopped},
	{context.Canceled, rpctypes.ErrGRPCCanceled},
	{context.DeadlineExceeded, rpctypes.ErrGRPCDeadlineExceeded},
}

// invalidArgument lists kvstore's errors for a malformed request that etcd
// has no error of its own for; they are answered InvalidArgument with
// kvstore's message.
var invalidArgument = []error{
	kvstore.ErrInvalidCompare,
	kvstore.ErrInvalidOpOption,
	kvstore.ErrInvalidOp,
	kvstore.ErrInvalidLeaseID,
	kvstore.ErrInvalidWatchRange,
	kvstore.ErrNegativeWatchRevision,
	kvstore.ErrInvalidMember,
	kvstore.ErrInvalidAlarm,
}

// toGRPC converts an error of the node into the gRPC status error etcd
// would answer. An error with no etcd counterpart is codes.Unknown with
// kvstore's message, as etcd answers errors it has no code for.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if g := authToGRPC(err); g != nil {
		return g
	}
	for _, m := range errorMap {
		if errors.Is(err, m.kv) {
			return m.grpc
		}
	}
	for _, e := range invalidArgument {
		if errors.Is(err, e) {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}
