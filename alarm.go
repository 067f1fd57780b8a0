package kvstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kvstore/kvstore/internal/wire"
)

// Alarms, as etcd's: a condition a member found that the whole cluster acts
// on until an operator clears it. An alarm is raised and cleared through
// raft (a wire.CmdAlarm log entry), so every member holds the same set of
// active alarms at the same log index, keeps it across restarts (the log
// and the FSM snapshot carry it) and applies writes against it alike.
//
// A NOSPACE alarm (quota.go) makes every member refuse the writes that add
// data; a CORRUPT alarm, raised by the corruption checks (corruption.go)
// for a member whose store diverged from the others', makes that member
// refuse reads and writes. Both are cleared through DisarmAlarm.

// AlarmKind is the kind of an alarm. The numbers are in the raft log and
// snapshots: never reuse one.
type AlarmKind uint8

const (
	// AlarmNoSpace: the store reached its quota (WithQuotaBytes). While
	// one is active, Put, a Txn with a put and Grant fail with
	// ErrDatabaseSpaceExceeded on every member.
	AlarmNoSpace AlarmKind = 1
	// AlarmCorrupt: the corruption checks found this member's store
	// inconsistent with the others' (corruption.go). While one is active
	// in a member's name, that member refuses reads, watches and writes
	// with ErrCorrupt; the others serve.
	AlarmCorrupt AlarmKind = 2
)

// String returns etcd's name of the kind: "NOSPACE", "CORRUPT".
func (k AlarmKind) String() string {
	switch k {
	case AlarmNoSpace:
		return "NOSPACE"
	case AlarmCorrupt:
		return "CORRUPT"
	}
	return fmt.Sprintf("AlarmKind(%d)", uint8(k))
}

// ParseAlarmKind returns the kind String names (case-insensitive), or
// ErrInvalidAlarm.
func ParseAlarmKind(s string) (AlarmKind, error) {
	for _, k := range []AlarmKind{AlarmNoSpace, AlarmCorrupt} {
		if strings.EqualFold(s, k.String()) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown kind %q", ErrInvalidAlarm, s)
}

// Alarm is one active alarm: its kind and the member that raised it.
type Alarm struct {
	MemberID string
	Kind     AlarmKind
}

// Alarms lists the cluster's active alarms, ordered by member then kind.
// The read is linearizable: it sees every alarm raised or cleared before
// it was called.
func (n *Node) Alarms(ctx context.Context) ([]Alarm, error) {
	if err := n.readIndex(ctx); err != nil {
		return nil, err
	}
	return n.fsm.activeAlarms(), nil
}

// DisarmAlarm clears the alarm of kind that member raised, through raft,
// and returns once that is applied on this node; clearing an alarm that is
// not active does nothing. An empty member (or one over 64 KiB), or a kind
// other than AlarmNoSpace and AlarmCorrupt, is ErrInvalidAlarm, and
// nothing is proposed.
//
// Clearing a NOSPACE alarm while this node's store is still over its quota
// (judged once the latest compaction has been freed on this node) raises a
// new one at once, in this node's name, and returns
// ErrDatabaseSpaceExceeded: compact (and delete) first, then disarm.
func (n *Node) DisarmAlarm(ctx context.Context, member string, kind AlarmKind) error {
	if member == "" || len(member) > wire.MaxAlarmMember {
		return fmt.Errorf("%w: member ID of %d bytes", ErrInvalidAlarm, len(member))
	}
	if kind != AlarmNoSpace && kind != AlarmCorrupt {
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidAlarm, uint8(kind))
	}
	if _, err := n.propose(ctx, alarmCommand(wire.AlarmDeactivate, member, kind)); err != nil {
		return err
	}
	if kind != AlarmNoSpace || n.cfg.quota() < 0 {
		return nil
	}
	// Judge the size once the latest compaction has been freed here:
	// physical compaction runs behind apply.
	select {
	case <-n.fsm.compactionDone(n.fsm.compactRevision()):
	case <-ctx.Done():
		return fmt.Errorf("kvstore: alarm disarmed; waiting for the compaction to be freed before checking the quota: %w", ctx.Err())
	}
	if size := n.fsm.size(); size > n.cfg.quota() {
		return n.raiseNoSpace(ctx, size, 0)
	}
	return nil
}

func alarmCommand(action wire.AlarmAction, member string, kind AlarmKind) *wire.Command {
	return &wire.Command{Kind: wire.CmdAlarm, Alarm: &wire.Alarm{Action: action, Member: member, Kind: uint8(kind)}}
}

// alarmSet is the FSM's set of active alarms. The apply goroutine changes
// it (apply, restore); any goroutine reads it. mu guards active; size
// mirrors len(active), stored under mu, so that the checks every request
// makes cost one atomic load while no alarm is active.
type alarmSet struct {
	mu     sync.RWMutex
	active map[Alarm]struct{}
	size   atomic.Int32
}

// apply raises or clears the alarm a CmdAlarm entry names; both are
// idempotent. Every kind number is recorded as it is, so that members of
// different builds agree on the set.
func (s *alarmSet) apply(a *wire.Alarm) {
	key := Alarm{MemberID: a.Member, Kind: AlarmKind(a.Kind)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.Action == wire.AlarmActivate {
		if s.active == nil {
			s.active = map[Alarm]struct{}{}
		}
		s.active[key] = struct{}{}
		s.size.Store(int32(len(s.active)))
		return
	}
	delete(s.active, key)
	s.size.Store(int32(len(s.active)))
}

// has reports whether any member's alarm of kind is active.
func (s *alarmSet) has(kind AlarmKind) bool {
	if s.size.Load() == 0 {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for a := range s.active {
		if a.Kind == kind {
			return true
		}
	}
	return false
}

// hasFor reports whether member's alarm of kind is active.
func (s *alarmSet) hasFor(member string, kind AlarmKind) bool {
	if s.size.Load() == 0 {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.active[Alarm{MemberID: member, Kind: kind}]
	return ok
}

// list returns the active alarms ordered by member, then kind.
func (s *alarmSet) list() []Alarm {
	s.mu.RLock()
	out := make([]Alarm, 0, len(s.active))
	for a := range s.active {
		out = append(out, a)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Alarm) int {
		if c := strings.Compare(a.MemberID, b.MemberID); c != 0 {
			return c
		}
		return int(a.Kind) - int(b.Kind)
	})
	return out
}

// replace sets the active alarms to list (a snapshot restore).
func (s *alarmSet) replace(list []Alarm) {
	active := make(map[Alarm]struct{}, len(list))
	for _, a := range list {
		active[a] = struct{}{}
	}
	s.mu.Lock()
	s.active = active
	s.size.Store(int32(len(active)))
	s.mu.Unlock()
}

// refuse is the alarms' verdict on a command about to be applied: while a
// NOSPACE alarm is active, a command that adds data is refused with
// ErrDatabaseSpaceExceeded. It depends on the log alone, so every member
// decides alike.
func (s *alarmSet) refuse(c *wire.Command) error {
	if addsData(c) && s.has(AlarmNoSpace) {
		return errSpaceExceeded
	}
	return nil
}

// errSpaceExceeded is the rejection of a write under a NOSPACE alarm.
var errSpaceExceeded = fmt.Errorf("%w (NOSPACE alarm active: compact, then DisarmAlarm)", ErrDatabaseSpaceExceeded)

// The alarms' part of the FSM snapshot (format 2 on): the number of
// alarms, 4 bytes big-endian; for each, its kind byte, the member ID's
// length, 2 bytes big-endian, and the ID; then the CRC-32C of all that, 4
// bytes big-endian.

// maxAlarms bounds the count a snapshot may claim, so that a damaged count
// cannot allocate much: far more than members times kinds.
const maxAlarms = 1 << 16

// appendAlarms returns buf with the snapshot part of list appended.
func appendAlarms(buf []byte, list []Alarm) []byte {
	start := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(list)))
	for _, a := range list {
		buf = append(buf, byte(a.Kind))
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(a.MemberID)))
		buf = append(buf, a.MemberID...)
	}
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf[start:], alarmsCRC))
}

var alarmsCRC = crc32.MakeTable(crc32.Castagnoli)

// readAlarms reads the snapshot part appendAlarms wrote.
func readAlarms(r io.Reader) ([]Alarm, error) {
	sum := crc32.New(alarmsCRC)
	tr := io.TeeReader(r, sum)
	var count [4]byte
	if _, err := io.ReadFull(tr, count[:]); err != nil {
		return nil, fmt.Errorf("alarms: %w", err)
	}
	n := binary.BigEndian.Uint32(count[:])
	if n > maxAlarms {
		return nil, fmt.Errorf("alarms: count %d out of range", n)
	}
	list := make([]Alarm, 0, n)
	for range n {
		var head [3]byte
		if _, err := io.ReadFull(tr, head[:]); err != nil {
			return nil, fmt.Errorf("alarms: %w", err)
		}
		member := make([]byte, binary.BigEndian.Uint16(head[1:]))
		if _, err := io.ReadFull(tr, member); err != nil {
			return nil, fmt.Errorf("alarms: %w", err)
		}
		list = append(list, Alarm{MemberID: string(member), Kind: AlarmKind(head[0])})
	}
	want := sum.Sum32()
	var got [4]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return nil, fmt.Errorf("alarms: %w", err)
	}
	if binary.BigEndian.Uint32(got[:]) != want {
		return nil, errors.New("alarms: checksum mismatch")
	}
	return list, nil
}
