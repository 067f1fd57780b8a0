package kvstore

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/internal/wire"
)

func authCmd(a *wire.Auth) *wire.Command { return &wire.Command{Kind: wire.CmdAuth, Auth: a} }

var testSecret = bytes.Repeat([]byte{1}, auth.MinSecretLen)

// TestFSMAppliesAuth: auth changes apply in log order, a refused one is a
// value that changes nothing, and a write checked at an older auth
// revision is refused at apply (WithAuthRevision).
func TestFSMAppliesAuth(t *testing.T) {
	a := newApplier(t)
	if r := a.apply(authCmd(&wire.Auth{Op: wire.AuthEnable, Secret: testSecret})); !errors.Is(r.Err, auth.ErrRootUserNotExist) {
		t.Fatalf("enable without root: %v", r.Err)
	}
	for _, c := range []*wire.Auth{
		{Op: wire.AuthUserAdd, User: "root", Hash: []byte("h")},
		{Op: wire.AuthUserGrantRole, User: "root", Role: "root"},
		{Op: wire.AuthRoleAdd, Role: "r"},
		{Op: wire.AuthRoleGrantPermission, Role: "r", PermType: uint8(auth.Write), Key: []byte("a"), End: []byte("b")},
		{Op: wire.AuthUserAdd, User: "u", NoPassword: true},
		{Op: wire.AuthUserGrantRole, User: "u", Role: "r"},
		{Op: wire.AuthEnable, Secret: testSecret},
	} {
		if r := a.apply(authCmd(c)); r.Err != nil {
			t.Fatalf("%+v: %v", c, r.Err)
		}
	}
	st := a.f.auth.Status()
	if !st.Enabled || st.Revision != 7 {
		t.Fatalf("status %+v", st)
	}
	if r := a.apply(authCmd(&wire.Auth{Op: wire.AuthUserDelete, User: "root"})); !errors.Is(r.Err, auth.ErrInvalidAuthMgmt) || a.f.auth.Status() != st {
		t.Fatalf("delete root: %v, status %+v", r.Err, a.f.auth.Status())
	}
	if err := a.f.auth.IsPutPermitted("u", []byte("a1")); err != nil {
		t.Fatal(err)
	}

	// A put checked at the current revision applies; one checked before
	// the latest change does not.
	put := putCmd("a1", "v", 0)
	put.AuthRevision = st.Revision
	if r := a.apply(put); r.Err != nil {
		t.Fatal(r.Err)
	}
	a.apply(authCmd(&wire.Auth{Op: wire.AuthRoleRevokePermission, Role: "r", Key: []byte("a"), End: []byte("b")}))
	rev := a.f.kv.Revision()
	stale := putCmd("a2", "v", 0)
	stale.AuthRevision = st.Revision
	if r := a.apply(stale); !errors.Is(r.Err, auth.ErrAuthOldRevision) || a.f.kv.Revision() != rev {
		t.Fatalf("stale put: %v, revision %d → %d", r.Err, rev, a.f.kv.Revision())
	}

	// With auth disabled at apply, nothing is checked: the same put
	// applies.
	a.apply(authCmd(&wire.Auth{Op: wire.AuthDisable}))
	if r := a.apply(stale); r.Err != nil {
		t.Fatalf("stale put with auth disabled: %v", r.Err)
	}
}

// TestFSMSnapshotCarriesAuth: a format-3 snapshot restores the auth
// state, a damaged auth part is refused, and a format-2 snapshot (before
// auth) restores with auth disabled and empty.
func TestFSMSnapshotCarriesAuth(t *testing.T) {
	a := newApplier(t)
	a.apply(putCmd("k", "v", 0))
	a.apply(alarmCmd(wire.AlarmActivate, "n1", AlarmNoSpace))
	a.apply(authCmd(&wire.Auth{Op: wire.AuthUserAdd, User: "root", Hash: []byte("h")}))
	a.apply(authCmd(&wire.Auth{Op: wire.AuthUserGrantRole, User: "root", Role: "root"}))
	a.apply(authCmd(&wire.Auth{Op: wire.AuthEnable, Secret: testSecret}))
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*fsmSnapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	b := newApplier(t)
	if err := b.f.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, want := b.f.auth.AppendSnapshot(nil), a.f.auth.AppendSnapshot(nil); !bytes.Equal(got, want) {
		t.Fatal("restored auth state differs")
	}
	if !b.f.auth.Enabled() || len(b.f.alarms.list()) != 1 {
		t.Fatal("restore lost auth or alarms")
	}

	var leases bytes.Buffer
	if _, err := a.f.leases.WriteTo(&leases); err != nil {
		t.Fatal(err)
	}
	attrsLen := len(appendMemberAttrs(nil, a.f.memberAttrs.list())) // the part before auth's
	authAt := len(fsmSnapshotMagic) + 1 + 8 + leases.Len() + len(appendAlarms(nil, a.f.alarms.list())) + attrsLen
	authLen := len(a.f.auth.AppendSnapshot(nil))
	bad := bytes.Clone(buf.Bytes())
	bad[authAt+authLen-5] ^= 1
	c := newApplier(t)
	if err := c.f.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, errBadSnapshot) || c.f.auth.Enabled() {
		t.Fatalf("damaged auth part: %v", err)
	}

	// Format 2: without the member attributes' and auth parts.
	v2 := append(bytes.Clone(buf.Bytes()[:authAt-attrsLen]), buf.Bytes()[authAt+authLen:]...)
	v2[len(fsmSnapshotMagic)] = fsmSnapshotVersionV2
	d := newApplier(t)
	d.apply(authCmd(&wire.Auth{Op: wire.AuthRoleAdd, Role: "replaced"}))
	if err := d.f.Restore(io.NopCloser(bytes.NewReader(v2))); err != nil {
		t.Fatalf("format 2: %v", err)
	}
	if st := d.f.auth.Status(); st.Enabled || st.Revision != 0 || len(d.f.auth.RoleList()) != 0 || len(d.f.alarms.list()) != 1 {
		t.Fatalf("format 2 restored auth %+v, roles %v", st, d.f.auth.RoleList())
	}
}
