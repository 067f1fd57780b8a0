package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

func sampleTxn() *mvcc.TxnRequest {
	return &mvcc.TxnRequest{
		Compares: []mvcc.Compare{{Key: []byte("k"), End: []byte("z"), Target: mvcc.CompareMod, Result: mvcc.CompareLess, Number: 7}},
		Then: []mvcc.Op{
			{Put: &mvcc.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 3, PrevKV: true}},
			{Range: &mvcc.RangeRequest{Key: []byte("a"), End: []byte{0}, Revision: 4, Limit: 2, SortOrder: mvcc.SortDescend, SortTarget: mvcc.SortByValue, KeysOnly: true, MinModRevision: 1, MaxCreateRevision: 9}},
			{Txn: &mvcc.TxnRequest{Else: []mvcc.Op{{Delete: &mvcc.DeleteRequest{Key: []byte("b"), End: []byte("c"), PrevKV: true}}}}},
		},
		Else: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("x"), IgnoreValue: true, IgnoreLease: true}}},
	}
}

func sampleCommands() []*Command {
	return []*Command{
		{Kind: CmdPut, Put: PutOf(&mvcc.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 9, PrevKV: true})},
		{Kind: CmdDelete, Delete: DeleteOf(&mvcc.DeleteRequest{Key: []byte("a"), End: []byte{0}})},
		{Kind: CmdTxn, Txn: TxnOf(sampleTxn())},
		{Kind: CmdCompact, Revision: 42},
		{Kind: CmdLeaseGrant, LeaseID: 7, TTL: 60},
		{Kind: CmdLeaseRevoke, LeaseID: 7},
		{Kind: CmdLeaseCheckpoint, Checkpoints: []Checkpoint{{ID: 1, Remaining: 30}, {ID: 2, Remaining: 5}}},
		{Kind: CmdAlarm, Alarm: &Alarm{Action: AlarmActivate, Member: "n1", Kind: 1}},
		{Kind: CmdAlarm, Alarm: &Alarm{Action: AlarmDeactivate, Member: "n2", Kind: 2}},
		{Kind: CmdMemberAttrs, MemberAttrs: &MemberAttrs{ID: "n1", Name: "infra1", ClientURLs: []string{"http://10.0.0.1:2379", "https://10.0.0.1:2379"}}},
		{Kind: CmdAuth, Auth: &Auth{Op: AuthUserAdd, User: "u", Hash: []byte("h")}},
		{Kind: CmdAuth, Auth: &Auth{Op: AuthRoleGrantPermission, Role: "r", PermType: 2, Key: []byte("a"), End: []byte{0}}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != commandVersion {
			t.Fatalf("%s: first byte %d", c.Kind, data[0])
		}
		got, err := DecodeCommand(data)
		if err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", c.Kind, got, c)
		}
	}
	// The txn converts back to the request it came from.
	if got := TxnOf(sampleTxn()).Request(); !reflect.DeepEqual(got, sampleTxn()) {
		t.Fatalf("txn conversion:\n got %+v\nwant %+v", got, sampleTxn())
	}
}

func TestDecodeCommandRejectsBadEntries(t *testing.T) {
	good, _ := EncodeCommand(sampleCommands()[0])
	noBody, _ := EncodeCommand(&Command{Kind: CmdTxn})
	unknownKind, _ := EncodeCommand(&Command{Kind: 99})
	deep := &mvcc.TxnRequest{}
	for range maxTxnDepth + 1 {
		deep = &mvcc.TxnRequest{Then: []mvcc.Op{{Txn: deep}}}
	}
	tooDeep, _ := EncodeCommand(&Command{Kind: CmdTxn, Txn: TxnOf(deep)})
	alarmNoBody, _ := EncodeCommand(&Command{Kind: CmdAlarm})
	alarmNoAction, _ := EncodeCommand(&Command{Kind: CmdAlarm, Alarm: &Alarm{Member: "n1", Kind: 1}})
	alarmNoMember, _ := EncodeCommand(&Command{Kind: CmdAlarm, Alarm: &Alarm{Action: AlarmActivate, Kind: 1}})
	alarmNoKind, _ := EncodeCommand(&Command{Kind: CmdAlarm, Alarm: &Alarm{Action: AlarmActivate, Member: "n1"}})
	attrsNoBody, _ := EncodeCommand(&Command{Kind: CmdMemberAttrs})
	attrsNoID, _ := EncodeCommand(&Command{Kind: CmdMemberAttrs, MemberAttrs: &MemberAttrs{Name: "a"}})
	attrsLongName, _ := EncodeCommand(&Command{Kind: CmdMemberAttrs, MemberAttrs: &MemberAttrs{ID: "n1", Name: strings.Repeat("n", MaxMemberAttr+1)}})
	attrsManyURLs, _ := EncodeCommand(&Command{Kind: CmdMemberAttrs, MemberAttrs: &MemberAttrs{ID: "n1", ClientURLs: make([]string, MaxMemberClientURLs+1)}})
	attrsLongURL, _ := EncodeCommand(&Command{Kind: CmdMemberAttrs, MemberAttrs: &MemberAttrs{ID: "n1", ClientURLs: []string{strings.Repeat("u", MaxMemberAttr+1)}}})
	alarmLongMember, _ := EncodeCommand(&Command{Kind: CmdAlarm, Alarm: &Alarm{Action: AlarmActivate, Member: strings.Repeat("n", MaxAlarmMember+1), Kind: 1}})
	cases := map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{9}, good[1:]...),
		"garbage":         {commandVersion, 0xc1, 0xff, 0x00},
		"truncated":       good[:len(good)-2],
		"no body":         noBody,
		"unknown kind":    unknownKind,
		"too deep":        tooDeep,
		"alarm no body":   alarmNoBody,
		"alarm no action": alarmNoAction,
		"alarm no member": alarmNoMember,
		"alarm no kind":   alarmNoKind,
		"alarm long ID":   alarmLongMember,
		"attrs no body":   attrsNoBody,
		"attrs no ID":     attrsNoID,
		"attrs long name": attrsLongName,
		"attrs many URLs": attrsManyURLs,
		"attrs long URL":  attrsLongURL,
	}
	for name, data := range cases {
		if _, err := DecodeCommand(data); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: error %v, want ErrBadCommand", name, err)
		}
	}
	// A flipped byte anywhere fails the checksum: corruption, not a
	// deterministic rejection.
	for i := range good {
		if i == 0 {
			continue // the version byte: an unknown version is rejected alike everywhere
		}
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x10
		if _, err := DecodeCommand(bad); !errors.Is(err, ErrCorruptCommand) || VerifyCommand(bad) == nil {
			t.Fatalf("byte %d flipped: %v, want ErrCorruptCommand", i, err)
		}
	}
}

// TestDecodeCommandFormat1 pins that entries written before the checksum
// (format 1: version byte and msgpack) are still read.
func TestDecodeCommandFormat1(t *testing.T) {
	for _, c := range sampleCommands() {
		data, _ := EncodeCommand(c)
		v1 := append([]byte{commandVersionV1}, data[1:len(data)-4]...)
		if err := VerifyCommand(v1); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(v1)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("%s in format 1: %+v %v", c.Kind, got, err)
		}
	}
}

// FuzzDecodeCommand: any bytes decode to a command or ErrBadCommand, never
// a panic, and an accepted command survives a re-encode.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		data, _ := EncodeCommand(c)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v is not ErrBadCommand", err)
			}
			return
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeCommand(again)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-encoded command differs: %v", err)
		}
	})
}

// BenchmarkCommandRoundTrip encodes and decodes a 256-byte put, the work
// every write costs the proposer and each member's apply.
func BenchmarkCommandRoundTrip(b *testing.B) {
	c := &Command{Kind: CmdPut, Put: &Put{Key: []byte("key-0000000000000001"), Value: make([]byte, 256)}}
	b.ReportAllocs()
	for b.Loop() {
		data, err := EncodeCommand(c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
}
