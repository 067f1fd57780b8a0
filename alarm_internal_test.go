package kvstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/mvcc"
)

func alarmCmd(action wire.AlarmAction, member string, kind AlarmKind) *wire.Command {
	return alarmCommand(action, member, kind)
}

// TestFSMRefusesWritesUnderNoSpace pins what apply does under a NOSPACE
// alarm (rule 23): writes that add data, a put nested in a txn's untaken
// branch included, are refused as a value (the store does not change);
// everything else applies.
func TestFSMRefusesWritesUnderNoSpace(t *testing.T) {
	a := newApplier(t)
	a.apply(&wire.Command{Kind: wire.CmdLeaseGrant, LeaseID: 1, TTL: 60})
	a.apply(putCmd("a", "1", 1))
	a.apply(putCmd("b", "2", 0))
	a.apply(alarmCmd(wire.AlarmActivate, "n2", AlarmNoSpace))
	a.apply(alarmCmd(wire.AlarmActivate, "n2", AlarmNoSpace)) // idempotent
	if got, want := a.f.alarms.list(), []Alarm{{MemberID: "n2", Kind: AlarmNoSpace}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("alarms %v, want %v", got, want)
	}
	rev := a.f.kv.Revision()
	putTxn := wire.TxnOf(&mvcc.TxnRequest{Else: []mvcc.Op{{Txn: &mvcc.TxnRequest{Then: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("c")}}}}}}})
	for name, c := range map[string]*wire.Command{
		"put":            putCmd("c", "3", 0),
		"txn with a put": {Kind: wire.CmdTxn, Txn: putTxn},
		"lease grant":    {Kind: wire.CmdLeaseGrant, LeaseID: 2, TTL: 60},
	} {
		if r := a.apply(c); !errors.Is(r.Err, ErrDatabaseSpaceExceeded) || !errors.Is(r.Err, ErrNoSpace) || r.Revision != rev {
			t.Fatalf("%s under NOSPACE: %+v", name, r)
		}
	}
	if a.f.leases.Exists(2) || a.f.kv.Revision() != rev {
		t.Fatal("a refused write changed the state")
	}
	delTxn := wire.TxnOf(&mvcc.TxnRequest{Then: []mvcc.Op{{Delete: &mvcc.DeleteRequest{Key: []byte("b")}}, {Range: &mvcc.RangeRequest{Key: []byte("a")}}}})
	for name, c := range map[string]*wire.Command{
		"txn without puts": {Kind: wire.CmdTxn, Txn: delTxn},
		"revoke":           {Kind: wire.CmdLeaseRevoke, LeaseID: 1},
		"compact":          {Kind: wire.CmdCompact, Revision: 2},
	} {
		if r := a.apply(c); r.Err != nil {
			t.Fatalf("%s under NOSPACE: %v", name, r.Err)
		}
	}
	// A CORRUPT alarm does not change what apply does (the member it names
	// refuses requests before they reach the log, corruption.go); the
	// NOSPACE one cleared, writes apply again.
	a.apply(alarmCmd(wire.AlarmActivate, "n1", AlarmCorrupt))
	a.apply(alarmCmd(wire.AlarmDeactivate, "n2", AlarmNoSpace))
	a.apply(alarmCmd(wire.AlarmDeactivate, "n3", AlarmNoSpace)) // not active: nothing
	if r := a.apply(putCmd("c", "3", 0)); r.Err != nil {
		t.Fatalf("put after disarm: %v", r.Err)
	}
	if got, want := a.f.alarms.list(), []Alarm{{MemberID: "n1", Kind: AlarmCorrupt}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("alarms %v, want %v", got, want)
	}
}

// TestFSMSnapshotCarriesAlarms: a format-2 snapshot restores the alarms,
// a damaged alarms part is refused and changes nothing, and a format-1
// snapshot (written before alarms existed) still restores, with none.
func TestFSMSnapshotCarriesAlarms(t *testing.T) {
	a := newApplier(t)
	a.apply(putCmd("k", "v", 0))
	a.apply(alarmCmd(wire.AlarmActivate, "n1", AlarmNoSpace))
	a.apply(alarmCmd(wire.AlarmActivate, "n3", AlarmCorrupt))
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*fsmSnapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	b := newApplier(t)
	b.apply(alarmCmd(wire.AlarmActivate, "gone", AlarmNoSpace)) // replaced by the snapshot's
	if err := b.f.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, want := b.f.alarms.list(), a.f.alarms.list(); !reflect.DeepEqual(got, want) || len(got) != 2 {
		t.Fatalf("restored alarms %v, want %v", got, want)
	}

	// The alarms part follows the header and the lease table.
	var leases bytes.Buffer
	if _, err := a.f.leases.WriteTo(&leases); err != nil {
		t.Fatal(err)
	}
	alarmsAt := len(fsmSnapshotMagic) + 1 + 8 + leases.Len()
	bad := bytes.Clone(buf.Bytes())
	bad[alarmsAt+5] ^= 1 // the first alarm's member ID length
	c := newApplier(t)
	c.apply(putCmd("kept", "x", 0))
	before, _ := c.f.kv.Hash(0)
	if err := c.f.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("damaged alarms part: %v", err)
	}
	if after, _ := c.f.kv.Hash(0); after != before || len(c.f.alarms.list()) != 0 || c.f.applied.get() != 1 {
		t.Fatal("a failed restore changed the state")
	}

	// Format 1: the same snapshot without the alarms part (and the member
	// attributes' and auth parts, which follow it from format 3).
	alarmsLen := len(appendAlarms(nil, a.f.alarms.list())) + len(appendMemberAttrs(nil, a.f.memberAttrs.list())) + len(a.f.auth.AppendSnapshot(nil))
	v1 := append(bytes.Clone(buf.Bytes()[:alarmsAt]), buf.Bytes()[alarmsAt+alarmsLen:]...)
	v1[len(fsmSnapshotMagic)] = fsmSnapshotVersionV1
	d := newApplier(t)
	if err := d.f.Restore(io.NopCloser(bytes.NewReader(v1))); err != nil {
		t.Fatalf("format 1: %v", err)
	}
	if got := d.f.alarms.list(); len(got) != 0 || d.f.kv.Revision() != a.f.kv.Revision() {
		t.Fatalf("format 1 restored alarms %v, revision %d", got, d.f.kv.Revision())
	}
	if binary.BigEndian.Uint64(v1[len(fsmSnapshotMagic)+1:]) != d.f.applied.get() {
		t.Fatal("format 1: applied index not restored")
	}
}
