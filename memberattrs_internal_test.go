package kvstore

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
)

func attrsCmd(id, name string, urls ...string) *wire.Command {
	return &wire.Command{Kind: wire.CmdMemberAttrs, MemberAttrs: &wire.MemberAttrs{ID: id, Name: name, ClientURLs: urls}}
}

// applyConfig applies a configuration entry of the members ids.
func (a *applier) applyConfig(ids ...string) {
	a.t.Helper()
	var c raft.Configuration
	for _, id := range ids {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	a.index++
	a.f.ApplyBatch([]*raft.Log{{Index: a.index, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(c)}})
}

// TestFSMMemberAttributes: a member's latest published attributes replace
// its earlier ones, leave the store's revision alone, and go with the
// member when a configuration entry removes it.
func TestFSMMemberAttributes(t *testing.T) {
	a := newApplier(t)
	a.applyConfig("n1", "n2", "n3")
	rev := a.f.kv.Revision()
	a.apply(attrsCmd("n1", "one", "http://a:1"))
	a.apply(attrsCmd("n2", "two", "http://b:1", "https://b:2"))
	a.apply(attrsCmd("n1", "uno", "http://a:3"))
	if a.f.kv.Revision() != rev {
		t.Fatalf("publishing attributes moved the revision from %d to %d", rev, a.f.kv.Revision())
	}
	if got, want := a.f.memberAttributes("n1"), (memberAttrs{Name: "uno", ClientURLs: []string{"http://a:3"}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("n1: %+v, want %+v", got, want)
	}
	if got := a.f.memberAttributes("n3"); !got.empty() {
		t.Fatalf("n3 published nothing, has %+v", got)
	}
	a.applyConfig("n1", "n3") // n2 removed
	if got := a.f.memberAttributes("n2"); !got.empty() {
		t.Fatalf("removed n2 still has %+v", got)
	}
	if got := a.f.memberAttributes("n1"); got.Name != "uno" {
		t.Fatalf("n1 lost its attributes with n2's removal: %+v", got)
	}
}

func fsmSnapshotBytes(t *testing.T, f *fsm) []byte {
	t.Helper()
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

// TestFSMSnapshotCarriesMemberAttributes: a format-3 snapshot restores the
// attributes, a damaged attributes part is refused and changes nothing,
// and a format-2 snapshot (written before attributes existed) restores
// with none.
func TestFSMSnapshotCarriesMemberAttributes(t *testing.T) {
	a := newApplier(t)
	a.apply(putCmd("k", "v", 0))
	a.apply(alarmCmd(wire.AlarmActivate, "n1", AlarmNoSpace))
	a.apply(attrsCmd("n1", "one", "http://a:1", "http://a:2"))
	a.apply(attrsCmd("n2", "", "http://b:1"))
	a.apply(attrsCmd("n3", "three"))
	data := fsmSnapshotBytes(t, a.f)

	b := newApplier(t)
	b.apply(attrsCmd("gone", "x")) // replaced by the snapshot's
	if err := b.f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got, want := b.f.memberAttrs.list(), a.f.memberAttrs.list(); !reflect.DeepEqual(got, want) || len(got) != 3 {
		t.Fatalf("restored attributes %+v, want %+v", got, want)
	}

	// The attributes part follows the header, the lease table and the alarms.
	var leases bytes.Buffer
	if _, err := a.f.leases.WriteTo(&leases); err != nil {
		t.Fatal(err)
	}
	attrsAt := len(fsmSnapshotMagic) + 1 + 8 + leases.Len() + len(appendAlarms(nil, a.f.alarms.list()))
	attrsLen := len(appendMemberAttrs(nil, a.f.memberAttrs.list()))
	for _, at := range []int{attrsAt + 3, attrsAt + 6, attrsAt + attrsLen - 1} { // the count, the first ID, the checksum
		bad := bytes.Clone(data)
		bad[at] ^= 1
		c := newApplier(t)
		c.apply(putCmd("kept", "x", 0))
		c.apply(attrsCmd("n9", "kept"))
		before, _ := c.f.kv.Hash(0)
		if err := c.f.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("byte %d of the attributes part damaged: %v", at-attrsAt, err)
		}
		if after, _ := c.f.kv.Hash(0); after != before || c.f.memberAttributes("n9").Name != "kept" || len(c.f.alarms.list()) != 0 || c.f.applied.get() != 2 {
			t.Fatal("a failed restore changed the state")
		}
	}

	// Format 2: the same snapshot without the attributes part and the auth
	// part after it.
	authLen := len(a.f.auth.AppendSnapshot(nil))
	v2 := append(bytes.Clone(data[:attrsAt]), data[attrsAt+attrsLen+authLen:]...)
	v2[len(fsmSnapshotMagic)] = fsmSnapshotVersionV2
	d := newApplier(t)
	d.apply(attrsCmd("gone", "x"))
	if err := d.f.Restore(io.NopCloser(bytes.NewReader(v2))); err != nil {
		t.Fatalf("format 2: %v", err)
	}
	if got := d.f.memberAttrs.list(); len(got) != 0 || d.f.kv.Revision() != a.f.kv.Revision() || len(d.f.alarms.list()) != 1 {
		t.Fatalf("format 2 restored attributes %+v, revision %d, alarms %v", got, d.f.kv.Revision(), d.f.alarms.list())
	}
}
