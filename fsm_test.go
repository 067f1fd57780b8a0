package kvstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// applier feeds commands to an fsm as raft would, one log index each.
type applier struct {
	t     *testing.T
	f     *fsm
	index uint64
}

func newApplier(t *testing.T) *applier {
	f := newFSM(5, 0, watch.Config{})
	t.Cleanup(func() { f.kv.Close() })
	return &applier{t: t, f: f}
}

func (a *applier) apply(c *wire.Command) *applyResult {
	a.t.Helper()
	data, err := wire.EncodeCommand(c)
	if err != nil {
		a.t.Fatal(err)
	}
	a.index++
	out := a.f.ApplyBatch([]*raft.Log{{Index: a.index, Type: raft.LogCommand, Data: data}})
	r, _ := out[0].(*applyResult) // nil for an entry applied before
	return r
}

func putCmd(key, value string, leaseID int64) *wire.Command {
	return &wire.Command{Kind: wire.CmdPut, Put: &wire.Put{Key: []byte(key), Value: []byte(value), Lease: leaseID}}
}

func TestFSMAppliesCommands(t *testing.T) {
	a := newApplier(t)
	if r := a.apply(putCmd("a", "1", 0)); r.Err != nil || r.Revision != 2 || len(r.Events) != 1 {
		t.Fatalf("put: %+v", r)
	}
	if r := a.apply(&wire.Command{Kind: wire.CmdLeaseGrant, LeaseID: 7, TTL: 1}); r.Err != nil || r.LeaseTTL != 5 {
		t.Fatalf("grant below the minimum TTL: %+v", r)
	}
	a.apply(putCmd("b", "2", 7))
	a.apply(putCmd("c", "3", 7))
	a.apply(putCmd("c", "4", 0)) // detaches c
	if r := a.apply(putCmd("d", "x", 99)); !errors.Is(r.Err, lease.ErrLeaseNotFound) || r.Revision != 5 {
		t.Fatalf("put with unknown lease: %+v", r)
	}
	r := a.apply(&wire.Command{Kind: wire.CmdLeaseRevoke, LeaseID: 7})
	if r.Err != nil || r.Revision != 6 || len(r.Events) != 1 || string(r.Events[0].KV.Key) != "b" {
		t.Fatalf("revoke deletes exactly the attached keys in one revision: %+v", r)
	}
	if r := a.apply(&wire.Command{Kind: wire.CmdLeaseRevoke, LeaseID: 7}); !errors.Is(r.Err, lease.ErrLeaseNotFound) || r.Revision != 6 {
		t.Fatalf("second revoke: %+v", r)
	}
	txn := wire.TxnOf(&mvcc.TxnRequest{Then: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("e"), Value: []byte("5")}}, {Delete: &mvcc.DeleteRequest{Key: []byte("a")}}}})
	if r := a.apply(&wire.Command{Kind: wire.CmdTxn, Txn: txn}); r.Err != nil || r.Revision != 7 || len(r.Events) != 2 {
		t.Fatalf("txn: %+v", r)
	}
	if r := a.apply(&wire.Command{Kind: wire.CmdCompact, Revision: 100}); !errors.Is(r.Err, mvcc.ErrFutureRevision) {
		t.Fatalf("compact future: %+v", r)
	}
	if r := a.apply(&wire.Command{Kind: wire.CmdCompact, Revision: 6}); r.Err != nil || a.f.kv.CompactRevision() != 6 {
		t.Fatalf("compact: %+v", r)
	}
	// A bad entry is rejected as a value, the same everywhere.
	a.index++
	out := a.f.ApplyBatch([]*raft.Log{
		{Index: a.index, Type: raft.LogCommand, Data: []byte{42}},
		{Index: a.index + 1, Type: raft.LogConfiguration},
		{Index: a.index + 2, Type: raft.LogBarrier},
	})
	if len(out) != 3 || !errors.Is(out[0].(*applyResult).Err, wire.ErrBadCommand) || out[1] != nil || out[2] != nil {
		t.Fatalf("batch results %+v", out)
	}
	if got := a.f.applied.get(); got != a.index+2 {
		t.Fatalf("applied index %d, want %d", got, a.index+2)
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	a := newApplier(t)
	a.apply(&wire.Command{Kind: wire.CmdLeaseGrant, LeaseID: 1, TTL: 60})
	a.apply(putCmd("k1", "v", 1))
	a.apply(putCmd("k2", "v", 0))
	a.apply(&wire.Command{Kind: wire.CmdLeaseCheckpoint, Checkpoints: []wire.Checkpoint{{ID: 1, Remaining: 30}, {ID: 9, Remaining: 3}}})
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	a.apply(putCmd("after", "snapshot", 0)) // not in the snapshot
	var buf bytes.Buffer
	if err := snap.(*fsmSnapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	b := newApplier(t)
	b.apply(putCmd("replaced", "x", 0))
	if err := b.f.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	b.index = b.f.applied.get() // raft continues after the snapshot
	if b.f.kv.Revision() != 3 {
		t.Fatalf("restored revision %d, want 3", b.f.kv.Revision())
	}
	l, ok := b.f.leases.Lookup(1)
	if !ok || l.TTL != 60 || l.Remaining != 30 || !bytes.Equal([]byte(b.f.leases.Keys(1)[0]), []byte("k1")) {
		t.Fatalf("restored lease %+v %v keys %v", l, ok, b.f.leases.Keys(1))
	}
	// Both sides continue identically.
	ra := a.apply(&wire.Command{Kind: wire.CmdLeaseRevoke, LeaseID: 1})
	rb := b.apply(&wire.Command{Kind: wire.CmdLeaseRevoke, LeaseID: 1})
	if ra.Err != nil || rb.Err != nil || len(rb.Events) != 1 {
		t.Fatalf("revoke after restore: %+v / %+v", ra, rb)
	}
	// A corrupt snapshot leaves the state alone.
	c := newApplier(t)
	c.apply(putCmd("kept", "x", 0))
	before, _ := c.f.kv.Hash(0)
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)-10] ^= 1
	if err := c.f.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	if after, _ := c.f.kv.Hash(0); after != before || c.f.leases.Exists(1) || c.f.applied.get() != 1 {
		t.Fatal("a failed restore changed the state")
	}
}

// TestFSMKeepsNewerStateOverAnOlderSnapshot pins what happens when raft
// installs a snapshot older than the state (a follower whose log had a
// conflicting suffix): the state stays, reads never go back, and the
// entries raft hands over again are not applied twice.
func TestFSMKeepsNewerStateOverAnOlderSnapshot(t *testing.T) {
	a := newApplier(t)
	a.apply(putCmd("k", "1", 0))
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*fsmSnapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	a.apply(putCmd("k", "2", 0))
	a.apply(putCmd("k", "3", 0))
	if err := a.f.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if rev := a.f.kv.Revision(); rev != 4 {
		t.Fatalf("revision after restoring an older snapshot: %d, want 4 (kept)", rev)
	}
	a.index = 1 // raft re-delivers entries 2 and 3, then 4
	if a.apply(putCmd("k", "2", 0)) != nil || a.apply(putCmd("k", "3", 0)) != nil {
		t.Fatal("an entry applied before was applied again")
	}
	if r := a.apply(putCmd("k", "4", 0)); r.Err != nil || r.Revision != 5 {
		t.Fatalf("first new entry after the re-delivered ones: %+v, want revision 5", r)
	}
}

func TestAppliedIndexWait(t *testing.T) {
	var a appliedIndex
	a.init()
	done := make(chan error, 1)
	go func() { done <- a.wait(context.Background(), 3) }()
	a.set(2)
	a.set(3)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.wait(ctx, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with an ended context: %v", err)
	}
}

// TestFSMStopsOnACorruptEntry: a command whose checksum fails is not
// applied nor rejected as a value (either would diverge from the other
// members); the FSM stops, naming the entry.
func TestFSMStopsOnACorruptEntry(t *testing.T) {
	a := newApplier(t)
	a.apply(putCmd("k", "1", 0))
	data, err := wire.EncodeCommand(putCmd("k", "2", 0))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "raft log entry 2 is corrupt") {
			t.Fatalf("panic %q, want one naming entry 2", msg)
		}
		if got, _ := a.f.kv.Range(&mvcc.RangeRequest{Key: []byte("k")}); string(got.KVs[0].Value) != "1" {
			t.Fatalf("the corrupt entry was applied: %q", got.KVs[0].Value)
		}
	}()
	a.f.ApplyBatch([]*raft.Log{{Index: 2, Type: raft.LogCommand, Data: data}})
}
