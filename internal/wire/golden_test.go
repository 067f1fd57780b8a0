package wire

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// goldenMessages are the node-to-node messages whose bytes
// testdata/golden.txt pins.
func goldenMessages(t *testing.T) []any {
	cmd, err := EncodeCommand(sampleCommands()[0])
	if err != nil {
		t.Fatal(err)
	}
	return []any{
		&Request{Kind: RPCPropose, Cluster: "c", Command: cmd},
		&Request{Kind: RPCReadIndex, Cluster: "c"},
		&Request{Kind: RPCMembership, Cluster: "c", Membership: &Membership{Op: MemberAddVoter, ID: "n4", Address: "a4", Index: 9}},
		&Request{Kind: RPCLease, Cluster: "c", Lease: &LeaseRequest{Op: LeaseTimeToLive, ID: 7, Keys: true}},
		&Reply{Index: 9, Result: &Result{Revision: 3, Put: &mvcc.PutResult{Revision: 3, PrevKV: &mvcc.KeyValue{Key: []byte("k"), Value: []byte("v"), CreateRevision: 2, ModRevision: 3, Version: 2, Lease: 5}}, LeaseTTL: 4}},
		&Reply{Result: &Result{Revision: 4, Delete: &mvcc.DeleteResult{Revision: 4, Deleted: 1, PrevKVs: []mvcc.KeyValue{{Key: []byte("d")}}}}},
		&Reply{Err: &Error{Code: 1, Message: "not leader", LeaderID: "n2", LeaderAddress: "a2"}},
		&Reply{Lease: &LeaseReply{Revision: 4, TTL: 10, GrantedTTL: 60, KeyList: [][]byte{[]byte("a")}}},
		&Request{Kind: RPCHashKV, Cluster: "c", Revision: 42},
		&Reply{Hash: 0xdeadbeef, CompactRevision: 40, Revision: 50},
		&Request{Kind: RPCReadIndex, Cluster: "c", From: "n2", Term: 7},
	}
}

// TestEncodingIsPinned compares the bytes of sample commands and messages
// with testdata/golden.txt, written by the build that first wrote these
// formats: log entries live as long as the log, and members of different
// builds talk to each other, so the bytes must never change in place.
func TestEncodingIsPinned(t *testing.T) {
	golden := readGolden(t)
	check := func(name string, data []byte, decode func([]byte) (any, error), want any) {
		t.Helper()
		pinned, ok := golden[name]
		if !ok {
			t.Fatalf("%s: not in testdata/golden.txt", name)
		}
		if got := hex.EncodeToString(data); got != pinned {
			t.Errorf("%s encodes as\n%s\nwant the pinned\n%s", name, got, pinned)
		}
		raw, _ := hex.DecodeString(pinned)
		got, err := decode(raw)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the pinned bytes decode as %+v, %v; want %+v", name, got, err, want)
		}
	}
	for i, c := range sampleCommands() {
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("command-%d-%s", i, c.Kind), data, func(b []byte) (any, error) { return DecodeCommand(b) }, c)
	}
	for i, m := range goldenMessages(t) {
		data, err := EncodeRPC(m)
		if err != nil {
			t.Fatal(err)
		}
		fresh := reflect.New(reflect.TypeOf(m).Elem()).Interface()
		check(fmt.Sprintf("rpc-%d", i), data, func(b []byte) (any, error) { return fresh, DecodeRPC(b, fresh) }, m)
	}
}

func readGolden(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	golden := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, data, ok := strings.Cut(sc.Text(), " "); ok {
			golden[name] = data
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return golden
}

// TestReadIndexTermIsIgnoredByEarlierMembers: a read-index call with the
// asker's ID and term decodes, on a member of a build before those fields,
// as the call it knew, which that member answers with a heartbeat round.
func TestReadIndexTermIsIgnoredByEarlierMembers(t *testing.T) {
	data, err := EncodeRPC(&Request{Kind: RPCReadIndex, Cluster: "c", From: "n2", Term: 7})
	if err != nil {
		t.Fatal(err)
	}
	var earlier struct {
		Kind       RPCKind       `codec:"k"`
		Cluster    string        `codec:"c"`
		Command    []byte        `codec:"cmd,omitempty"`
		Membership *Membership   `codec:"m,omitempty"`
		Lease      *LeaseRequest `codec:"l,omitempty"`
		Revision   int64         `codec:"rev,omitempty"`
	}
	if err := DecodeRPC(data, &earlier); err != nil {
		t.Fatalf("an earlier member cannot decode the call: %v", err)
	}
	if earlier.Kind != RPCReadIndex || earlier.Cluster != "c" {
		t.Fatalf("an earlier member decodes the call as %+v", earlier)
	}
}
