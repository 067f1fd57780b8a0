package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/kvstore/kvstore/mvcc"
)

// Log commands. Every raft log entry kvstore writes is one command: a
// format version byte followed by the msgpack encoding of command. Entries
// live as long as the log and snapshots do, so the format is never changed
// in place: new fields are added with omitempty, new kinds get new numbers,
// and an incompatible change gets a new version byte that decodeCommand
// learns to read beside the old one.
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

var (
	// errBadCommand reports a log entry that is not a command this build
	// can apply. Every replica sees the same bytes, so every replica
	// rejects it the same way.
	errBadCommand = errors.New("kvstore: bad log command")
	// errCorruptCommand reports a command whose checksum does not match:
	// this replica's copy was damaged, so rejecting it would diverge from
	// the others. The FSM stops the process instead (fsm.go), and Open
	// refuses a log holding one (ErrCorruptLog).
	errCorruptCommand = fmt.Errorf("%w: checksum mismatch", errBadCommand)
)

var commandCRC = crc32.MakeTable(crc32.Castagnoli)

// verifyCommand checks a format-2 entry's checksum without decoding it.
// Other formats have none: format 1, and versions this build does not know
// (rejected by decodeCommand alike on every replica).
func verifyCommand(data []byte) error {
	if len(data) == 0 || data[0] != commandVersion {
		return nil
	}
	if len(data) < 5 {
		return fmt.Errorf("%w: %d bytes", errCorruptCommand, len(data))
	}
	n := len(data) - 4
	if crc32.Checksum(data[:n], commandCRC) != binary.LittleEndian.Uint32(data[n:]) {
		return errCorruptCommand
	}
	return nil
}

type commandKind uint8

const (
	cmdPut commandKind = iota + 1
	cmdDelete
	cmdTxn
	cmdCompact
	cmdLeaseGrant
	cmdLeaseRevoke
	cmdLeaseCheckpoint
)

func (k commandKind) String() string {
	names := [...]string{"", "put", "delete", "txn", "compact", "lease-grant", "lease-revoke", "lease-checkpoint"}
	if int(k) < len(names) && k > 0 {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

type command struct {
	Kind        commandKind      `codec:"k"`
	Put         *wirePut         `codec:"p,omitempty"`
	Delete      *wireDelete      `codec:"d,omitempty"`
	Txn         *wireTxn         `codec:"x,omitempty"`
	Revision    int64            `codec:"r,omitempty"`   // compact
	LeaseID     int64            `codec:"l,omitempty"`   // lease grant, revoke
	TTL         int64            `codec:"ttl,omitempty"` // lease grant
	Checkpoints []wireCheckpoint `codec:"c,omitempty"`
}

type wirePut struct {
	Key         []byte `codec:"k"`
	Value       []byte `codec:"v,omitempty"`
	Lease       int64  `codec:"l,omitempty"`
	PrevKV      bool   `codec:"pk,omitempty"`
	IgnoreValue bool   `codec:"iv,omitempty"`
	IgnoreLease bool   `codec:"il,omitempty"`
}

type wireDelete struct {
	Key    []byte `codec:"k"`
	End    []byte `codec:"e,omitempty"`
	PrevKV bool   `codec:"pk,omitempty"`
}

type wireRange struct {
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

type wireCompare struct {
	Key    []byte `codec:"k"`
	End    []byte `codec:"e,omitempty"`
	Target uint8  `codec:"t"`
	Result uint8  `codec:"r"`
	Value  []byte `codec:"v,omitempty"`
	Number int64  `codec:"n,omitempty"`
}

type wireOp struct {
	Range  *wireRange  `codec:"g,omitempty"`
	Put    *wirePut    `codec:"p,omitempty"`
	Delete *wireDelete `codec:"d,omitempty"`
	Txn    *wireTxn    `codec:"x,omitempty"`
}

type wireTxn struct {
	Compares []wireCompare `codec:"c,omitempty"`
	Then     []wireOp      `codec:"t,omitempty"`
	Else     []wireOp      `codec:"e,omitempty"`
}

type wireCheckpoint struct {
	ID        int64 `codec:"i"`
	Remaining int64 `codec:"r"`
}

// maxTxnDepth bounds the nesting of a decoded txn: the public API refuses
// deeper txns before proposing them (mvcc.ValidateTxn), so a deeper one in
// the log is damage, not a request.
const maxTxnDepth = mvcc.MaxTxnDepth

// wireHandle is the msgpack configuration of every command and node-to-node
// message. It is set up once and never changed; codec handles are safe for
// concurrent use and keep only a cache of type information, which is why
// one is shared rather than built per message (building one per message
// cost a third of a decode).
var wireHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.MaxInitLen = 1 << 10 // a corrupt length cannot allocate gigabytes up front
	return h
}()

// encodeCommand returns the log entry for c: the version byte, then msgpack.
func encodeCommand(c *command) ([]byte, error) {
	var body []byte
	if err := codec.NewEncoderBytes(&body, wireHandle).Encode(c); err != nil {
		return nil, fmt.Errorf("kvstore: encoding %s command: %w", c.Kind, err)
	}
	out := make([]byte, 0, 1+len(body)+4)
	out = append(append(out, commandVersion), body...)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, commandCRC)), nil
}

// decodeCommand parses a log entry. Anything it cannot read — an unknown
// version, bytes that are not a command, an unknown kind, a missing body, a
// txn nested deeper than any valid request — is errBadCommand.
func decodeCommand(data []byte) (*command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty entry", errBadCommand)
	}
	body := data[1:]
	switch data[0] {
	case commandVersionV1:
	case commandVersion:
		if err := verifyCommand(data); err != nil {
			return nil, err
		}
		body = data[1 : len(data)-4]
	default:
		return nil, fmt.Errorf("%w: unknown format version %d", errBadCommand, data[0])
	}
	var c command
	if err := codec.NewDecoderBytes(body, wireHandle).Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadCommand, err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// check verifies that the command carries the body its kind needs.
func (c *command) check() error {
	ok := false
	switch c.Kind {
	case cmdPut:
		ok = c.Put != nil
	case cmdDelete:
		ok = c.Delete != nil
	case cmdTxn:
		ok = c.Txn != nil && c.Txn.depth() <= maxTxnDepth
	case cmdCompact, cmdLeaseGrant, cmdLeaseRevoke, cmdLeaseCheckpoint:
		ok = true
	}
	if !ok {
		return fmt.Errorf("%w: %s command without a valid body", errBadCommand, c.Kind)
	}
	return nil
}

func (t *wireTxn) depth() int {
	d := 0
	for _, list := range [][]wireOp{t.Then, t.Else} {
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

// Conversions between the wire types and mvcc's requests.

func wirePutOf(r *mvcc.PutRequest) *wirePut {
	return &wirePut{Key: r.Key, Value: r.Value, Lease: r.Lease, PrevKV: r.PrevKV, IgnoreValue: r.IgnoreValue, IgnoreLease: r.IgnoreLease}
}

func (w *wirePut) request() *mvcc.PutRequest {
	return &mvcc.PutRequest{Key: w.Key, Value: w.Value, Lease: w.Lease, PrevKV: w.PrevKV, IgnoreValue: w.IgnoreValue, IgnoreLease: w.IgnoreLease}
}

func wireDeleteOf(r *mvcc.DeleteRequest) *wireDelete {
	return &wireDelete{Key: r.Key, End: r.End, PrevKV: r.PrevKV}
}

func (w *wireDelete) request() *mvcc.DeleteRequest {
	return &mvcc.DeleteRequest{Key: w.Key, End: w.End, PrevKV: w.PrevKV}
}

func wireRangeOf(r *mvcc.RangeRequest) *wireRange {
	return &wireRange{Key: r.Key, End: r.End, Revision: r.Revision, Limit: r.Limit, SortOrder: uint8(r.SortOrder), SortTarget: uint8(r.SortTarget),
		KeysOnly: r.KeysOnly, CountOnly: r.CountOnly, MinModRevision: r.MinModRevision, MaxModRevision: r.MaxModRevision,
		MinCreateRevision: r.MinCreateRevision, MaxCreateRevision: r.MaxCreateRevision}
}

func (w *wireRange) request() *mvcc.RangeRequest {
	return &mvcc.RangeRequest{Key: w.Key, End: w.End, Revision: w.Revision, Limit: w.Limit, SortOrder: mvcc.SortOrder(w.SortOrder), SortTarget: mvcc.SortTarget(w.SortTarget),
		KeysOnly: w.KeysOnly, CountOnly: w.CountOnly, MinModRevision: w.MinModRevision, MaxModRevision: w.MaxModRevision,
		MinCreateRevision: w.MinCreateRevision, MaxCreateRevision: w.MaxCreateRevision}
}

func wireTxnOf(t *mvcc.TxnRequest) *wireTxn {
	w := &wireTxn{}
	for _, c := range t.Compares {
		w.Compares = append(w.Compares, wireCompare{Key: c.Key, End: c.End, Target: uint8(c.Target), Result: uint8(c.Result), Value: c.Value, Number: c.Number})
	}
	w.Then, w.Else = wireOpsOf(t.Then), wireOpsOf(t.Else)
	return w
}

func wireOpsOf(ops []mvcc.Op) []wireOp {
	var out []wireOp
	for _, op := range ops {
		var w wireOp
		switch {
		case op.Range != nil:
			w.Range = wireRangeOf(op.Range)
		case op.Put != nil:
			w.Put = wirePutOf(op.Put)
		case op.Delete != nil:
			w.Delete = wireDeleteOf(op.Delete)
		case op.Txn != nil:
			w.Txn = wireTxnOf(op.Txn)
		}
		out = append(out, w)
	}
	return out
}

func (w *wireTxn) request() *mvcc.TxnRequest {
	t := &mvcc.TxnRequest{}
	for _, c := range w.Compares {
		t.Compares = append(t.Compares, mvcc.Compare{Key: c.Key, End: c.End, Target: mvcc.CompareTarget(c.Target), Result: mvcc.CompareResult(c.Result), Value: c.Value, Number: c.Number})
	}
	t.Then, t.Else = requestOps(w.Then), requestOps(w.Else)
	return t
}

func requestOps(ops []wireOp) []mvcc.Op {
	var out []mvcc.Op
	for _, w := range ops {
		var op mvcc.Op
		if w.Range != nil {
			op.Range = w.Range.request()
		}
		if w.Put != nil {
			op.Put = w.Put.request()
		}
		if w.Delete != nil {
			op.Delete = w.Delete.request()
		}
		if w.Txn != nil {
			op.Txn = w.Txn.request()
		}
		out = append(out, op) // an op with no or several requests is mvcc.ErrInvalidOp
	}
	return out
}
