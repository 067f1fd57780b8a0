package wire

import (
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/kvstore/kvstore/mvcc"
)

// Node-to-node calls. Besides raft's own traffic, members call each other
// through transport.Call for what only the leader can do: a follower
// forwards writes and membership changes to the leader and asks it for a
// read index. A call is one Request and one Reply, each a version byte
// followed by msgpack; like log commands they only ever gain fields.

const rpcVersion byte = 1

// RPCKind says what a Request asks for.
type RPCKind uint8

const (
	// RPCPropose carries an encoded log command; the reply holds the
	// index it was committed at and its result.
	RPCPropose RPCKind = iota + 1
	// RPCReadIndex asks for an index whose application makes a local read
	// linearizable. The request names the asking member (From) and the
	// raft term it was in after its readers joined (Term), which lets a
	// leader of a small cluster count the request as that member's
	// acknowledgement of its leadership (readquorum.go); a request
	// without them is served by a heartbeat round, as before.
	RPCReadIndex
	// RPCMembership carries a membership change or leadership transfer.
	RPCMembership
	// RPCLease carries a lease renewal or TimeToLive, which the leader
	// answers from its deadlines.
	RPCLease
	// RPCJoin asks any member to add the caller as a learner; it forwards
	// the change to the leader. The reply holds the configuration index.
	RPCJoin
	// RPCRemoved tells a member that the leader removed it.
	RPCRemoved
	// RPCSetAddress asks any member to have the leader record the caller's
	// new address (MemberSetAddress); it forwards the change to the
	// leader. The reply holds the configuration index.
	RPCSetAddress
	// RPCIdentify asks a member for its ID (the reply's MemberID): the
	// leader checks with it that a member's new address reaches that
	// member before recording it.
	RPCIdentify
	// RPCHashKV asks a member for the hash of its store at the request's
	// Revision (mvcc.Store.Hash); the reply holds it, with the member's
	// compact and current revisions. The corruption checks compare them.
	RPCHashKV
)

// Request is a call from one member to another.
type Request struct {
	Kind RPCKind `codec:"k"`
	// Cluster is the sender's cluster token: members of different
	// clusters that reach each other by mistake refuse to talk.
	Cluster    string        `codec:"c"`
	Command    []byte        `codec:"cmd,omitempty"`
	Membership *Membership   `codec:"m,omitempty"`
	Lease      *LeaseRequest `codec:"l,omitempty"`
	// Revision is the revision RPCHashKV asks about.
	Revision int64 `codec:"rev,omitempty"`
	// From and Term are RPCReadIndex's asking member and its raft term.
	From string `codec:"from,omitempty"`
	Term uint64 `codec:"term,omitempty"`
}

// Reply answers a Request.
type Reply struct {
	Index  uint64      `codec:"i,omitempty"`
	Result *Result     `codec:"r,omitempty"`
	Err    *Error      `codec:"e,omitempty"`
	Lease  *LeaseReply `codec:"l,omitempty"`
	// MemberID answers RPCIdentify.
	MemberID string `codec:"mid,omitempty"`
	// Hash answers RPCHashKV, with the member's CompactRevision and
	// current Revision when it hashed.
	Hash            uint32 `codec:"h,omitempty"`
	CompactRevision int64  `codec:"crev,omitempty"`
	Revision        int64  `codec:"rev,omitempty"`
}

// Result is the result of applying a proposed command, as it crosses the
// network. The mvcc results are encoded by their Go field names, which
// mvcc keeps stable.
type Result struct {
	Revision int64              `codec:"rev"`
	Put      *mvcc.PutResult    `codec:"p,omitempty"`
	Delete   *mvcc.DeleteResult `codec:"d,omitempty"`
	Txn      *mvcc.TxnResult    `codec:"x,omitempty"`
	LeaseTTL int64              `codec:"ttl,omitempty"`
}

// MembershipOp is the change a Membership asks for.
type MembershipOp uint8

const (
	MemberAddVoter MembershipOp = iota + 1
	MemberAddLearner
	MemberPromote
	MemberRemove
	MemberTransfer
	// MemberSetAddress records a new address for an existing member,
	// keeping its suffrage.
	MemberSetAddress
)

// Membership is a membership change, a join, a leadership transfer or a
// removal notice.
type Membership struct {
	Op      MembershipOp `codec:"o"`
	ID      string       `codec:"id,omitempty"`
	Address string       `codec:"a,omitempty"`
	// Index is, in a removal notice (RPCRemoved), the index of the
	// configuration that removed the member.
	Index uint64 `codec:"ix,omitempty"`
}

// Error is an error as it crosses the network: the code of the sentinel
// it wraps (the kvstore package keeps the table of codes) and its text.
type Error struct {
	Code          int    `codec:"c"`
	Message       string `codec:"m"`
	LeaderID      string `codec:"lid,omitempty"`
	LeaderAddress string `codec:"la,omitempty"`
}

// LeaseOp is the lease request a LeaseRequest makes of the leader.
type LeaseOp uint8

const (
	LeaseKeepAlive LeaseOp = iota + 1
	LeaseTimeToLive
)

// LeaseRequest asks the leader, which keeps the leases' time, to renew a
// lease or to tell its remaining TTL (and keys, with Keys).
type LeaseRequest struct {
	Op   LeaseOp `codec:"o"`
	ID   int64   `codec:"id"`
	Keys bool    `codec:"k,omitempty"`
}

// LeaseReply answers a LeaseRequest.
type LeaseReply struct {
	Revision   int64    `codec:"rev,omitempty"`
	TTL        int64    `codec:"ttl"`
	GrantedTTL int64    `codec:"g,omitempty"`
	KeyList    [][]byte `codec:"keys,omitempty"`
}

// EncodeRPC returns the message for v, a *Request or a *Reply.
func EncodeRPC(v any) ([]byte, error) {
	var body []byte
	if err := codec.NewEncoderBytes(&body, handle).Encode(v); err != nil {
		return nil, fmt.Errorf("kvstore: encoding node-to-node message: %w", err)
	}
	return append([]byte{rpcVersion}, body...), nil
}

// DecodeRPC reads a message into v, a *Request or a *Reply; anything it
// cannot read is ErrBadRPC.
func DecodeRPC(data []byte, v any) error {
	if len(data) == 0 || data[0] != rpcVersion {
		return fmt.Errorf("%w: unknown format", ErrBadRPC)
	}
	if err := codec.NewDecoderBytes(data[1:], handle).Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRPC, err)
	}
	return nil
}
