package kvstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/transport"
)

// corruptVerdict's rules: the members outside a majority's hash are
// corrupt; with no majority, every member compared is.
func TestCorruptVerdict(t *testing.T) {
	h := func(member string, hash uint32) memberHash { return memberHash{member: member, hash: hash} }
	for _, tc := range []struct {
		name     string
		hashes   []memberHash
		members  int
		corrupt  []string
		majority bool
	}{
		{"all agree", []memberHash{h("n1", 1), h("n2", 1), h("n3", 1)}, 3, nil, false},
		{"alone", []memberHash{h("n1", 1)}, 1, nil, false},
		{"one of three differs", []memberHash{h("n1", 1), h("n2", 2), h("n3", 1)}, 3, []string{"n2"}, true},
		{"the checker differs", []memberHash{h("n1", 2), h("n2", 1), h("n3", 1)}, 3, []string{"n1"}, true},
		{"two of five differ", []memberHash{h("n1", 1), h("n2", 2), h("n3", 1), h("n4", 3), h("n5", 1)}, 5, []string{"n2", "n4"}, true},
		{"two of five agree: no majority", []memberHash{h("n1", 1), h("n2", 1), h("n3", 2)}, 5, []string{"n1", "n2", "n3"}, false},
		{"three of five agree", []memberHash{h("n1", 1), h("n2", 1), h("n3", 2), h("n4", 1)}, 5, []string{"n3"}, true},
		{"two members disagree", []memberHash{h("n1", 1), h("n2", 2)}, 2, []string{"n1", "n2"}, false},
		{"three-way split", []memberHash{h("n1", 1), h("n2", 2), h("n3", 3)}, 3, []string{"n1", "n2", "n3"}, false},
		{"one of three compared with the checker", []memberHash{h("n1", 1), h("n2", 2)}, 3, []string{"n1", "n2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			corrupt, majority := corruptVerdict(tc.hashes, tc.members)
			slices.Sort(corrupt)
			if !slices.Equal(corrupt, tc.corrupt) || majority != tc.majority {
				t.Fatalf("corrupt %v, majority %v; want %v, %v", corrupt, majority, tc.corrupt, tc.majority)
			}
		})
	}
}

// A member under its own CORRUPT alarm, as leader, refuses the writes
// other members forward to it but not alarm commands, and answers hash
// calls; a bad hash request is ErrBadRPC.
func TestCorruptLeaderServesCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr, err := transport.NewNetwork().Join("n1")
		if err != nil {
			t.Fatal(err)
		}
		n, err := Open("", WithID("n1"), WithTransport(tr), WithMemoryStorage(NewMemoryStorage()),
			WithBootstrap(Peer{ID: "n1", Address: "n1"}))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if _, err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		call := func(req *wire.Request) *wire.Reply {
			t.Helper()
			req.Cluster = DefaultClusterToken
			data, err := wire.EncodeRPC(req)
			if err != nil {
				t.Fatal(err)
			}
			var reply wire.Reply
			if err := wire.DecodeRPC(n.handleRPC(ctx, data), &reply); err != nil {
				t.Fatal(err)
			}
			return &reply
		}
		encode := func(c *wire.Command) []byte {
			t.Helper()
			data, err := wire.EncodeCommand(c)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
		rev := n.fsm.revision()
		want, err := n.HashKV(rev)
		if err != nil {
			t.Fatal(err)
		}
		if r := call(&wire.Request{Kind: wire.RPCHashKV, Revision: rev}); r.Err != nil || r.Hash != want.Hash || r.Revision != rev {
			t.Fatalf("hash call: %+v, want hash %08x at %d", r, want.Hash, rev)
		}
		if r := call(&wire.Request{Kind: wire.RPCHashKV}); !errors.Is(fromWireError(r.Err), ErrBadRPC) {
			t.Fatalf("hash call without a revision: %v, want ErrBadRPC", fromWireError(r.Err))
		}
		if _, err := n.propose(ctx, alarmCommand(wire.AlarmActivate, "n1", AlarmCorrupt)); err != nil {
			t.Fatal(err)
		}
		put := encode(&wire.Command{Kind: wire.CmdPut, Put: &wire.Put{Key: []byte("k"), Value: []byte("w")}})
		if r := call(&wire.Request{Kind: wire.RPCPropose, Command: put}); !errors.Is(fromWireError(r.Err), ErrCorrupt) {
			t.Fatalf("forwarded put: %v, want ErrCorrupt", fromWireError(r.Err))
		}
		if r := call(&wire.Request{Kind: wire.RPCHashKV, Revision: rev}); r.Err != nil || r.Hash != want.Hash {
			t.Fatalf("hash call under the alarm: %+v", r)
		}
		disarm := encode(alarmCommand(wire.AlarmDeactivate, "n1", AlarmCorrupt))
		if r := call(&wire.Request{Kind: wire.RPCPropose, Command: disarm}); r.Err != nil {
			t.Fatalf("forwarded disarm: %v", fromWireError(r.Err))
		}
		if r := call(&wire.Request{Kind: wire.RPCPropose, Command: put}); r.Err != nil {
			t.Fatalf("forwarded put after the disarm: %v", fromWireError(r.Err))
		}
	})
}

// TestCorruptMemberStaysAlive: a member under a CORRUPT alarm of its own
// is not ready (data_corruption) but stays alive, so that a liveness probe
// does not restart it in a loop (the alarm outlives restarts) while an
// operator repairs it; its read checks still read its state, and the
// client calls keep refusing with ErrCorrupt.
func TestCorruptMemberStaysAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr, err := transport.NewNetwork().Join("n1")
		if err != nil {
			t.Fatal(err)
		}
		n, err := Open("", WithID("n1"), WithTransport(tr), WithMemoryStorage(NewMemoryStorage()),
			WithBootstrap(Peer{ID: "n1", Address: "n1"}))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if _, err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.propose(ctx, alarmCommand(wire.AlarmActivate, "n1", AlarmCorrupt)); err != nil {
			t.Fatal(err)
		}
		for _, c := range n.LiveChecks() {
			if err := c.Check(ctx); err != nil {
				t.Fatalf("live check %s under the alarm: %v", c.Name, err)
			}
		}
		for _, c := range n.ReadyChecks() {
			err := c.Check(ctx)
			if c.Name == "data_corruption" {
				if err == nil {
					t.Fatal("data_corruption passes under the alarm")
				}
				continue
			}
			if err != nil {
				t.Fatalf("ready check %s under the alarm: %v", c.Name, err)
			}
		}
		if _, err := n.Get(ctx, []byte("k")); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get under the alarm: %v, want ErrCorrupt", err)
		}
		if _, err := n.Get(ctx, []byte("k"), WithSerializable()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("serializable Get under the alarm: %v, want ErrCorrupt", err)
		}
	})
}
