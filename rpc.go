package kvstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
)

// Node-to-node calls. Besides raft's own traffic, members call each other
// through transport.Call for what only the leader can do: a follower
// forwards writes and membership changes to the leader and asks it for a
// read index. A call is one rpcRequest and one rpcReply, each a version
// byte followed by msgpack; like log commands they only ever gain fields.

const rpcVersion byte = 1

type rpcKind uint8

const (
	// rpcPropose carries an encoded log command; the reply holds the
	// index it was committed at and its result.
	rpcPropose rpcKind = iota + 1
	// rpcReadIndex asks for an index whose application makes a local read
	// linearizable.
	rpcReadIndex
	// rpcMembership carries a membership change or leadership transfer.
	rpcMembership
	// rpcLease carries a lease renewal or TimeToLive, which the leader
	// answers from its deadlines.
	rpcLease
	// rpcJoin asks any member to add the caller as a learner; it forwards
	// the change to the leader. The reply holds the configuration index.
	rpcJoin
	// rpcRemoved tells a member that the leader removed it.
	rpcRemoved
	// rpcSetAddress asks any member to have the leader record the caller's
	// new address (memberSetAddress; readvertise.go); it forwards the
	// change to the leader. The reply holds the configuration index.
	rpcSetAddress
	// rpcIdentify asks a member for its ID (the reply's MemberID): the
	// leader checks with it that a member's new address reaches that
	// member before recording it.
	rpcIdentify
)

type rpcRequest struct {
	Kind rpcKind `codec:"k"`
	// Cluster is the sender's cluster token: members of different
	// clusters that reach each other by mistake refuse to talk.
	Cluster    string            `codec:"c"`
	Command    []byte            `codec:"cmd,omitempty"`
	Membership *wireMembership   `codec:"m,omitempty"`
	Lease      *wireLeaseRequest `codec:"l,omitempty"`
}

type rpcReply struct {
	Index  uint64          `codec:"i,omitempty"`
	Result *wireResult     `codec:"r,omitempty"`
	Err    *wireError      `codec:"e,omitempty"`
	Lease  *wireLeaseReply `codec:"l,omitempty"`
	// MemberID answers rpcIdentify.
	MemberID string `codec:"mid,omitempty"`
}

// wireResult is an applyResult as it crosses the network. The mvcc results
// are encoded by their Go field names, which mvcc keeps stable.
type wireResult struct {
	Revision int64              `codec:"rev"`
	Put      *mvcc.PutResult    `codec:"p,omitempty"`
	Delete   *mvcc.DeleteResult `codec:"d,omitempty"`
	Txn      *mvcc.TxnResult    `codec:"x,omitempty"`
	LeaseTTL int64              `codec:"ttl,omitempty"`
}

type membershipOp uint8

const (
	memberAddVoter membershipOp = iota + 1
	memberAddLearner
	memberPromote
	memberRemove
	memberTransfer
	// memberSetAddress records a new address for an existing member,
	// keeping its suffrage (readvertise.go).
	memberSetAddress
)

type wireMembership struct {
	Op      membershipOp `codec:"o"`
	ID      string       `codec:"id,omitempty"`
	Address string       `codec:"a,omitempty"`
	// Index is, in a removal notice (rpcRemoved), the index of the
	// configuration that removed the member.
	Index uint64 `codec:"ix,omitempty"`
}

// wireError is an error as it crosses the network: the code of the
// sentinel it wraps (see wireErrors) and its text.
type wireError struct {
	Code          int    `codec:"c"`
	Message       string `codec:"m"`
	LeaderID      string `codec:"lid,omitempty"`
	LeaderAddress string `codec:"la,omitempty"`
}

// wireErrors lists the errors a reply can carry by code. Codes are
// positions in this list: only append to it.
var wireErrors = [...]error{
	nil, // 0: an error with no known sentinel
	ErrNotLeader, ErrNoLeader, ErrOutcomeUnknown, ErrRequestTooLarge, ErrClosed,
	mvcc.ErrCompacted, mvcc.ErrFutureRevision, mvcc.ErrEmptyKey, mvcc.ErrKeyNotFound,
	mvcc.ErrValueProvided, mvcc.ErrValueTooLarge, mvcc.ErrLeaseProvided, mvcc.ErrLeaseNotFound,
	mvcc.ErrDuplicateKey, mvcc.ErrTooManyOps, mvcc.ErrInvalidSortOption, mvcc.ErrInvalidOp,
	lease.ErrLeaseNotFound, lease.ErrLeaseExists, lease.ErrTTLTooLarge, lease.ErrInvalidID,
	lease.ErrNotLeader, lease.ErrLeaseExpired, errBadCommand,
	context.DeadlineExceeded, context.Canceled, ErrClusterMismatch,
	ErrMemberExists, ErrMemberNotFound, ErrNotLearner, ErrBadRPC, ErrInvalidMember,
	errLeaderNotReady, ErrRemoved, ErrNoSpace, ErrLeaderUnreachable,
}

func toWireError(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Message: err.Error()}
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

func (w *wireError) err() error {
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

func encodeRPC(v any) ([]byte, error) {
	var body []byte
	if err := codec.NewEncoderBytes(&body, wireHandle).Encode(v); err != nil {
		return nil, fmt.Errorf("kvstore: encoding node-to-node message: %w", err)
	}
	return append([]byte{rpcVersion}, body...), nil
}

func decodeRPC(data []byte, v any) error {
	if len(data) == 0 || data[0] != rpcVersion {
		return fmt.Errorf("%w: unknown format", ErrBadRPC)
	}
	if err := codec.NewDecoderBytes(data[1:], wireHandle).Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRPC, err)
	}
	return nil
}

func resultToWire(r *applyResult) *wireResult {
	return &wireResult{Revision: r.Revision, Put: r.Put, Delete: r.Delete, Txn: r.Txn, LeaseTTL: r.LeaseTTL}
}

func (w *wireResult) result() *applyResult {
	if w == nil {
		return &applyResult{}
	}
	return &applyResult{Revision: w.Revision, Put: w.Put, Delete: w.Delete, Txn: w.Txn, LeaseTTL: w.LeaseTTL}
}
