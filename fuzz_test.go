package kvstore

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/transport"
	"github.com/kvstore/kvstore/watch"
)

// Fuzz targets for the decoders that read bytes from disk or the network
// (besides the log commands, fuzzed in internal/wire, kvstore.meta in
// internal/storage, and the lease and mvcc snapshot formats in their
// packages): the FSM snapshot and node-to-node messages. Each must reject garbage with its typed
// error, never panic, and change nothing when it rejects.

// snapshotBytes returns the FSM snapshot of a small state with leases,
// attached keys, history and a compaction.
func snapshotBytes(t testing.TB) []byte {
	f := newFSM(5, 0, watch.Config{})
	defer f.close()
	apply := func(c *wire.Command) {
		data, err := wire.EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		f.applyCommand(data)
	}
	apply(&wire.Command{Kind: wire.CmdLeaseGrant, LeaseID: 1, TTL: 60})
	apply(putCmd("a", "1", 1))
	apply(putCmd("b", "2", 0))
	apply(putCmd("a", "3", 0))
	apply(&wire.Command{Kind: wire.CmdDelete, Delete: &wire.Delete{Key: []byte("b")}})
	apply(&wire.Command{Kind: wire.CmdCompact, Revision: 3})
	apply(&wire.Command{Kind: wire.CmdLeaseCheckpoint, Checkpoints: []wire.Checkpoint{{ID: 1, Remaining: 30}}})
	apply(alarmCommand(wire.AlarmActivate, "n1", AlarmNoSpace))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*fsmSnapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzFSMRestore: any bytes restore into a consistent state or fail with
// errBadSnapshot leaving the state as it was.
func FuzzFSMRestore(f *testing.F) {
	good := snapshotBytes(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(fsmSnapshotMagic))
	f.Add(append([]byte(fsmSnapshotMagic), 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newFSM(5, 0, watch.Config{})
		defer s.close()
		put, _ := wire.EncodeCommand(putCmd("before", "x", 0))
		s.applyCommand(put)
		hash, _ := s.kv.Hash(0)
		err := s.Restore(io.NopCloser(bytes.NewReader(data)))
		if err != nil {
			if !errors.Is(err, errBadSnapshot) {
				t.Fatalf("error %v is not errBadSnapshot", err)
			}
			if after, _ := s.kv.Hash(0); after != hash || s.kv.Revision() != 2 {
				t.Fatal("a rejected snapshot changed the state")
			}
			return
		}
		// An accepted snapshot is a working state: it snapshots again and
		// accepts writes.
		if _, err := s.Snapshot(); err != nil {
			t.Fatalf("snapshot of a restored state: %v", err)
		}
		if _, err := s.kv.Hash(0); err != nil {
			t.Fatalf("hash of a restored state: %v", err)
		}
		s.applyCommand(put)
	})
}

// FuzzDecodeRPC: any bytes decode into a request or reply or fail with
// ErrBadRPC; what decodes survives a re-encode, and its parts convert
// (results, errors) without panicking.
func FuzzDecodeRPC(f *testing.F) {
	tr, err := transport.NewNetwork().Join("fuzz") // checks membership addresses
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tr.Close() })
	cmd, _ := wire.EncodeCommand(putCmd("k", "v", 0))
	for _, v := range []any{
		&wire.Request{Kind: wire.RPCPropose, Cluster: "c", Command: cmd},
		&wire.Request{Kind: wire.RPCReadIndex, Cluster: "c"},
		&wire.Request{Kind: wire.RPCMembership, Cluster: "c", Membership: &wire.Membership{Op: wire.MemberAddVoter, ID: "n4", Address: "a4"}},
		&wire.Request{Kind: wire.RPCLease, Cluster: "c", Lease: &wire.LeaseRequest{Op: wire.LeaseTimeToLive, ID: 7, Keys: true}},
		&wire.Request{Kind: wire.RPCSetAddress, Cluster: "c", Membership: &wire.Membership{Op: wire.MemberSetAddress, ID: "n3", Address: "a3"}},
		&wire.Request{Kind: wire.RPCIdentify, Cluster: "c"},
		&wire.Reply{MemberID: "n3"},
		&wire.Reply{Index: 9, Result: &wire.Result{Revision: 3, Put: &mvcc.PutResult{Revision: 3, PrevKV: &mvcc.KeyValue{Key: []byte("k")}}}},
		&wire.Reply{Err: toWireError(&NotLeaderError{LeaderID: "n2", LeaderAddress: "a2"})},
		&wire.Reply{Err: &wire.Error{Code: 1 << 20, Message: "from the future"}},
		&wire.Reply{Lease: &wire.LeaseReply{Revision: 4, TTL: 10, GrantedTTL: 60, KeyList: [][]byte{[]byte("a")}}},
	} {
		data, err := wire.EncodeRPC(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req wire.Request
		if err := wire.DecodeRPC(data, &req); err != nil {
			if !errors.Is(err, ErrBadRPC) {
				t.Fatalf("request: error %v is not ErrBadRPC", err)
			}
		} else {
			roundTrip(t, &req, &wire.Request{})
			if req.Membership != nil {
				checkMembership(req.Membership, tr)
			}
		}
		var reply wire.Reply
		if err := wire.DecodeRPC(data, &reply); err != nil {
			if !errors.Is(err, ErrBadRPC) {
				t.Fatalf("reply: error %v is not ErrBadRPC", err)
			}
			return
		}
		roundTrip(t, &reply, &wire.Reply{})
		resultFromWire(reply.Result)
		if err := fromWireError(reply.Err); err != nil {
			_ = err.Error()
		}
	})
}

// roundTrip re-encodes v and decodes it into fresh, which must then equal v.
func roundTrip[T any](t *testing.T, v *T, fresh *T) {
	t.Helper()
	again, err := wire.EncodeRPC(v)
	if err != nil {
		t.Fatalf("re-encoding a decoded message: %v", err)
	}
	if err := wire.DecodeRPC(again, fresh); err != nil {
		t.Fatalf("decoding a re-encoded message: %v", err)
	}
	if !reflect.DeepEqual(v, fresh) {
		t.Fatalf("re-encoded message differs:\n%+v\n%+v", v, fresh)
	}
}
