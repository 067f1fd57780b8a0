package wire

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/kvstore/kvstore/mvcc"
)

// Log commands. Every raft log entry kvstore writes is one Command: a
// format version byte followed by the msgpack encoding of Command, then a
// checksum. Entries
// live as long as the log and snapshots do, so the format is never changed
// in place: new fields are added with omitempty, new kinds get new numbers,
// and an incompatible change gets a new version byte that DecodeCommand
// learns to read beside the old one.
//
// Every replica applies what DecodeCommand returns, so decoding is the same
// everywhere: the same bytes give the same Command or the same rejection.
//
// The wire types below mirror the mvcc requests with short, explicit tags so
// that renaming a Go field never changes the bytes.

// commandVersion is the format of the commands this build writes: the
// version byte, the msgpack body, then the CRC-32C (Castagnoli) of both,
// 4 bytes little-endian. Format 1, still read, had no checksum. raft-wal
// checks its own checksums only over the last batch (torn writes) and
// raft-boltdb has none on data pages, so without ours a flipped byte in a
// log entry would be applied and served.
const (
	commandVersion   byte = 2
	commandVersionV1 byte = 1
)

var commandCRC = crc32.MakeTable(crc32.Castagnoli)

// VerifyCommand checks a format-2 entry's checksum without decoding it:
// nil, or ErrCorruptCommand.
// Other formats have none: format 1, and versions this build does not know
// (rejected by DecodeCommand alike on every replica).
func VerifyCommand(data []byte) error {
	if len(data) == 0 || data[0] != commandVersion {
		return nil
	}
	if len(data) < 5 {
		return fmt.Errorf("%w: %d bytes", ErrCorruptCommand, len(data))
	}
	n := len(data) - 4
	if crc32.Checksum(data[:n], commandCRC) != binary.LittleEndian.Uint32(data[n:]) {
		return ErrCorruptCommand
	}
	return nil
}

// CommandKind says what a Command does, and which of its fields it uses.
// The numbers are on disk: never reuse one.
type CommandKind uint8

const (
	CmdPut             CommandKind = iota + 1 // Put
	CmdDelete                                 // Delete
	CmdTxn                                    // Txn
	CmdCompact                                // Revision
	CmdLeaseGrant                             // LeaseID, TTL
	CmdLeaseRevoke                            // LeaseID
	CmdLeaseCheckpoint                        // Checkpoints
	CmdAlarm                                  // Alarm
	CmdMemberAttrs                            // MemberAttrs
	CmdAuth                                   // Auth
)

func (k CommandKind) String() string {
	names := [...]string{"", "put", "delete", "txn", "compact", "lease-grant", "lease-revoke", "lease-checkpoint", "alarm", "member-attrs", "auth"}
	if int(k) < len(names) && k > 0 {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Command is one raft log entry: a write, a compaction or a lease change.
type Command struct {
	Kind        CommandKind  `codec:"k"`
	Put         *Put         `codec:"p,omitempty"`
	Delete      *Delete      `codec:"d,omitempty"`
	Txn         *Txn         `codec:"x,omitempty"`
	Revision    int64        `codec:"r,omitempty"`   // compact
	LeaseID     int64        `codec:"l,omitempty"`   // lease grant, revoke
	TTL         int64        `codec:"ttl,omitempty"` // lease grant
	Checkpoints []Checkpoint `codec:"c,omitempty"`
	Alarm       *Alarm       `codec:"a,omitempty"`
	MemberAttrs *MemberAttrs `codec:"ma,omitempty"`
	Auth        *Auth        `codec:"au,omitempty"`
	// AuthRevision is the auth revision a write's permissions were checked
	// at (kvstore.WithAuthRevision); 0 for none.
	AuthRevision uint64 `codec:"ar,omitempty"`
}

// Put is an mvcc.PutRequest on the wire.
type Put struct {
	Key         []byte `codec:"k"`
	Value       []byte `codec:"v,omitempty"`
	Lease       int64  `codec:"l,omitempty"`
	PrevKV      bool   `codec:"pk,omitempty"`
	IgnoreValue bool   `codec:"iv,omitempty"`
	IgnoreLease bool   `codec:"il,omitempty"`
}

// Delete is an mvcc.DeleteRequest on the wire.
type Delete struct {
	Key    []byte `codec:"k"`
	End    []byte `codec:"e,omitempty"`
	PrevKV bool   `codec:"pk,omitempty"`
}

// Range is an mvcc.RangeRequest on the wire (inside a Txn).
type Range struct {
	Key               []byte `codec:"k"`
	End               []byte `codec:"e,omitempty"`
	Revision          int64  `codec:"r,omitempty"`
	Limit             int64  `codec:"n,omitempty"`
	SortOrder         uint8  `codec:"so,omitempty"`
	SortTarget        uint8  `codec:"st,omitempty"`
	KeysOnly          bool   `codec:"ko,omitempty"`
	CountOnly         bool   `codec:"co,omitempty"`
	MinModRevision    int64  `codec:"minm,omitempty"`
	MaxModRevision    int64  `codec:"maxm,omitempty"`
	MinCreateRevision int64  `codec:"minc,omitempty"`
	MaxCreateRevision int64  `codec:"maxc,omitempty"`
}

// Compare is an mvcc.Compare on the wire.
type Compare struct {
	Key    []byte `codec:"k"`
	End    []byte `codec:"e,omitempty"`
	Target uint8  `codec:"t"`
	Result uint8  `codec:"r"`
	Value  []byte `codec:"v,omitempty"`
	Number int64  `codec:"n,omitempty"`
}

// Op is an mvcc.Op on the wire: one of its fields is set.
type Op struct {
	Range  *Range  `codec:"g,omitempty"`
	Put    *Put    `codec:"p,omitempty"`
	Delete *Delete `codec:"d,omitempty"`
	Txn    *Txn    `codec:"x,omitempty"`
}

// Txn is an mvcc.TxnRequest on the wire.
type Txn struct {
	Compares []Compare `codec:"c,omitempty"`
	Then     []Op      `codec:"t,omitempty"`
	Else     []Op      `codec:"e,omitempty"`
}

// Checkpoint is a lease.Checkpoint on the wire: a lease's remaining TTL.
type Checkpoint struct {
	ID        int64 `codec:"i"`
	Remaining int64 `codec:"r"`
}

// AlarmAction says whether an Alarm command raises or clears its alarm.
// The numbers are on disk: never reuse one.
type AlarmAction uint8

const (
	AlarmActivate   AlarmAction = iota + 1 // raise Kind for Member
	AlarmDeactivate                        // clear Kind for Member
)

// MaxAlarmMember is the longest member ID an Alarm may carry: snapshots
// store its length in 2 bytes.
const MaxAlarmMember = 1<<16 - 1

// Alarm raises or clears one alarm: the alarm kind (kvstore.AlarmKind's
// numbers) that member Member raised.
type Alarm struct {
	Action AlarmAction `codec:"a"`
	Member string      `codec:"m"`
	Kind   uint8       `codec:"k"`
}

// Bounds of a MemberAttrs command: snapshots store each string's length in
// 2 bytes and the URL count in 1.
const (
	MaxMemberAttr       = 1<<16 - 1 // bytes of the ID, the name, each URL
	MaxMemberClientURLs = 255
)

// MemberAttrs publishes the attributes member ID states about itself: its
// human-readable name and the URLs its clients reach it at (etcd's
// member attributes). It replaces what the member published before.
type MemberAttrs struct {
	ID         string   `codec:"i"`
	Name       string   `codec:"n,omitempty"`
	ClientURLs []string `codec:"u,omitempty"`
}

func (m *MemberAttrs) valid() bool {
	if m.ID == "" || len(m.ID) > MaxMemberAttr || len(m.Name) > MaxMemberAttr || len(m.ClientURLs) > MaxMemberClientURLs {
		return false
	}
	for _, u := range m.ClientURLs {
		if len(u) > MaxMemberAttr {
			return false
		}
	}
	return true
}

// maxTxnDepth bounds the nesting of a decoded txn: the public API refuses
// deeper txns before proposing them (mvcc.ValidateTxn), so a deeper one in
// the log is damage, not a request.
const maxTxnDepth = mvcc.MaxTxnDepth

// handle is the msgpack configuration of every command and node-to-node
// message. It is set up once and never changed; codec handles are safe for
// concurrent use and keep only a cache of type information, which is why
// one is shared rather than built per message (building one per message
// cost a third of a decode).
var handle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.MaxInitLen = 1 << 10 // a corrupt length cannot allocate gigabytes up front
	return h
}()

// EncodeCommand returns the log entry for c: the version byte, msgpack,
// then the checksum.
func EncodeCommand(c *Command) ([]byte, error) {
	if putEncodable(c) {
		out := appendPutCommand(make([]byte, 1, 1+putBodySize(c)+4), c)
		out[0] = commandVersion
		return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, commandCRC)), nil
	}
	var body []byte
	if err := codec.NewEncoderBytes(&body, handle).Encode(c); err != nil {
		return nil, fmt.Errorf("kvstore: encoding %s command: %w", c.Kind, err)
	}
	out := make([]byte, 0, 1+len(body)+4)
	out = append(append(out, commandVersion), body...)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, commandCRC)), nil
}

// DecodeCommand parses a log entry. Anything it cannot read — an unknown
// version, bytes that are not a command, an unknown kind, a missing body, a
// txn nested deeper than any valid request — is ErrBadCommand; a checksum
// mismatch is ErrCorruptCommand (which matches ErrBadCommand too). The
// byte slices of a decoded Put may share data's memory: data must not
// change while the Command is in use (raft's log entries never do).
func DecodeCommand(data []byte) (*Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty entry", ErrBadCommand)
	}
	body := data[1:]
	switch data[0] {
	case commandVersionV1:
	case commandVersion:
		if err := VerifyCommand(data); err != nil {
			return nil, err
		}
		body = data[1 : len(data)-4]
	default:
		return nil, fmt.Errorf("%w: unknown format version %d", ErrBadCommand, data[0])
	}
	if data[0] == commandVersion {
		if c, ok := readPutCommand(body); ok {
			return c, nil // a valid Put by construction: check would pass
		}
	}
	var c Command
	if err := codec.NewDecoderBytes(body, handle).Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// check verifies that the command carries the body its kind needs.
func (c *Command) check() error {
	ok := false
	switch c.Kind {
	case CmdPut:
		ok = c.Put != nil
	case CmdDelete:
		ok = c.Delete != nil
	case CmdTxn:
		ok = c.Txn != nil && c.Txn.depth() <= maxTxnDepth
	case CmdCompact, CmdLeaseGrant, CmdLeaseRevoke, CmdLeaseCheckpoint:
		ok = true
	case CmdAlarm:
		ok = c.Alarm != nil && (c.Alarm.Action == AlarmActivate || c.Alarm.Action == AlarmDeactivate) &&
			c.Alarm.Member != "" && len(c.Alarm.Member) <= MaxAlarmMember && c.Alarm.Kind != 0
	case CmdMemberAttrs:
		ok = c.MemberAttrs != nil && c.MemberAttrs.valid()
	case CmdAuth:
		ok = c.Auth != nil && c.Auth.Op >= AuthEnable && c.Auth.Op <= AuthRoleRevokePermission
	}
	if !ok {
		return fmt.Errorf("%w: %s command without a valid body", ErrBadCommand, c.Kind)
	}
	return nil
}

func (t *Txn) depth() int {
	d := 0
	for _, list := range [][]Op{t.Then, t.Else} {
		for _, op := range list {
			if op.Txn != nil {
				d = max(d, op.Txn.depth())
				if d > maxTxnDepth {
					return d
				}
			}
		}
	}
	return d + 1
}

// Conversions between the wire types and mvcc's requests. Each copies
// every field: mvcc_test.go checks that against mvcc's types, so a field
// added to a request cannot be dropped on its way through the log.

// PutOf returns the wire form of r.
func PutOf(r *mvcc.PutRequest) *Put {
	return &Put{Key: r.Key, Value: r.Value, Lease: r.Lease, PrevKV: r.PrevKV, IgnoreValue: r.IgnoreValue, IgnoreLease: r.IgnoreLease}
}

// Request returns the mvcc request w carries.
func (w *Put) Request() *mvcc.PutRequest {
	return &mvcc.PutRequest{Key: w.Key, Value: w.Value, Lease: w.Lease, PrevKV: w.PrevKV, IgnoreValue: w.IgnoreValue, IgnoreLease: w.IgnoreLease}
}

// DeleteOf returns the wire form of r.
func DeleteOf(r *mvcc.DeleteRequest) *Delete {
	return &Delete{Key: r.Key, End: r.End, PrevKV: r.PrevKV}
}

// Request returns the mvcc request w carries.
func (w *Delete) Request() *mvcc.DeleteRequest {
	return &mvcc.DeleteRequest{Key: w.Key, End: w.End, PrevKV: w.PrevKV}
}

func rangeOf(r *mvcc.RangeRequest) *Range {
	return &Range{Key: r.Key, End: r.End, Revision: r.Revision, Limit: r.Limit, SortOrder: uint8(r.SortOrder), SortTarget: uint8(r.SortTarget),
		KeysOnly: r.KeysOnly, CountOnly: r.CountOnly, MinModRevision: r.MinModRevision, MaxModRevision: r.MaxModRevision,
		MinCreateRevision: r.MinCreateRevision, MaxCreateRevision: r.MaxCreateRevision}
}

func (w *Range) request() *mvcc.RangeRequest {
	return &mvcc.RangeRequest{Key: w.Key, End: w.End, Revision: w.Revision, Limit: w.Limit, SortOrder: mvcc.SortOrder(w.SortOrder), SortTarget: mvcc.SortTarget(w.SortTarget),
		KeysOnly: w.KeysOnly, CountOnly: w.CountOnly, MinModRevision: w.MinModRevision, MaxModRevision: w.MaxModRevision,
		MinCreateRevision: w.MinCreateRevision, MaxCreateRevision: w.MaxCreateRevision}
}

func compareOf(c *mvcc.Compare) Compare {
	return Compare{Key: c.Key, End: c.End, Target: uint8(c.Target), Result: uint8(c.Result), Value: c.Value, Number: c.Number}
}

func (w *Compare) request() mvcc.Compare {
	return mvcc.Compare{Key: w.Key, End: w.End, Target: mvcc.CompareTarget(w.Target), Result: mvcc.CompareResult(w.Result), Value: w.Value, Number: w.Number}
}

// TxnOf returns the wire form of t, nested txns included.
func TxnOf(t *mvcc.TxnRequest) *Txn {
	w := &Txn{}
	for i := range t.Compares {
		w.Compares = append(w.Compares, compareOf(&t.Compares[i]))
	}
	w.Then, w.Else = opsOf(t.Then), opsOf(t.Else)
	return w
}

func opsOf(ops []mvcc.Op) []Op {
	var out []Op
	for _, op := range ops {
		var w Op
		switch {
		case op.Range != nil:
			w.Range = rangeOf(op.Range)
		case op.Put != nil:
			w.Put = PutOf(op.Put)
		case op.Delete != nil:
			w.Delete = DeleteOf(op.Delete)
		case op.Txn != nil:
			w.Txn = TxnOf(op.Txn)
		}
		out = append(out, w)
	}
	return out
}

// Request returns the mvcc request w carries.
func (w *Txn) Request() *mvcc.TxnRequest {
	t := &mvcc.TxnRequest{}
	for i := range w.Compares {
		t.Compares = append(t.Compares, w.Compares[i].request())
	}
	t.Then, t.Else = requestOps(w.Then), requestOps(w.Else)
	return t
}

func requestOps(ops []Op) []mvcc.Op {
	var out []mvcc.Op
	for _, w := range ops {
		var op mvcc.Op
		if w.Range != nil {
			op.Range = w.Range.request()
		}
		if w.Put != nil {
			op.Put = w.Put.Request()
		}
		if w.Delete != nil {
			op.Delete = w.Delete.Request()
		}
		if w.Txn != nil {
			op.Txn = w.Txn.Request()
		}
		out = append(out, op) // an op with no or several requests is mvcc.ErrInvalidOp
	}
	return out
}
