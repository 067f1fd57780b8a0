package auth_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kvstore/kvstore/auth"
)

var secret = bytes.Repeat([]byte{7}, auth.MinSecretLen)

func hash(t *testing.T, password string) []byte {
	t.Helper()
	h, err := auth.HashPassword(password, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// enabledStore has root (root role), and user "alice" with role "r"
// holding perms.
func enabledStore(t *testing.T, perms ...auth.Permission) *auth.Store {
	t.Helper()
	s := auth.New()
	must(t, s.UserAdd(auth.RootUser, hash(t, "rootpw"), false))
	must(t, s.UserGrantRole(auth.RootUser, auth.RootRole))
	must(t, s.UserAdd("alice", hash(t, "alicepw"), false))
	must(t, s.RoleAdd("r"))
	must(t, s.UserGrantRole("alice", "r"))
	for _, p := range perms {
		must(t, s.RoleGrantPermission("r", p))
	}
	must(t, s.Enable(secret))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestPermissionIntervals(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	perms := []auth.Permission{
		{Type: auth.Read, Key: b("a"), End: b("c")},      // [a, c)
		{Type: auth.ReadWrite, Key: b("c"), End: b("e")}, // [c, e): joins [a, c)
		{Type: auth.Read, Key: b("k")},                   // k alone
		{Type: auth.Write, Key: b("w"), End: b("x")},     // [w, x)
		{Type: auth.Read, Key: b("z"), End: []byte{0}},   // z and every key after
	}
	s := enabledStore(t, perms...)
	tests := []struct {
		name     string
		key, end []byte
		read     bool
		write    bool
	}{
		{"point inside", b("b"), nil, true, false},
		{"range inside one", b("a"), b("b"), true, false},
		{"range over two adjacent", b("b"), b("d"), true, false},
		{"range up to the union's end", b("a"), b("e"), true, false},
		{"range past the union", b("a"), b("e\x00"), false, false},
		{"point at the end (exclusive)", b("e"), nil, false, false},
		{"readwrite part writes", b("c"), b("e"), true, true},
		{"write straddling", b("b"), b("d"), true, false},
		{"single-key perm", b("k"), nil, true, false},
		{"single-key perm is not a prefix", b("ka"), nil, false, false},
		{"range over the single key", b("k"), b("k\x00"), true, false},
		{"range wider than the single key", b("k"), b("l"), false, false},
		{"write-only perm", b("w"), b("w\xff"), false, true},
		{"from-key perm", b("zz"), nil, true, false},
		{"from-key range", b("z"), []byte{0}, true, false},
		{"from-key range starting before", b("y"), []byte{0}, false, false},
		{"all keys", []byte{0}, []byte{0}, false, false},
		{"empty range denied unless the point is granted", b("q"), b("a"), false, false},
		{"empty range at a granted point", b("b"), b("a"), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.IsRangePermitted("alice", tt.key, tt.end)
			if (r == nil) != tt.read || (r != nil && !errors.Is(r, auth.ErrPermissionDenied)) {
				t.Errorf("read: %v, want permitted=%v", r, tt.read)
			}
			w := s.IsDeleteRangePermitted("alice", tt.key, tt.end)
			if (w == nil) != tt.write {
				t.Errorf("write: %v, want permitted=%v", w, tt.write)
			}
			if tt.end == nil {
				if p := s.IsPutPermitted("alice", tt.key); (p == nil) != tt.write {
					t.Errorf("put: %v, want permitted=%v", p, tt.write)
				}
			}
			if err := s.IsRangePermitted(auth.RootUser, tt.key, tt.end); err != nil {
				t.Errorf("root: %v", err)
			}
		})
	}
	wantErr(t, "no user", s.IsRangePermitted("", b("a"), nil), auth.ErrUserEmpty)
	wantErr(t, "unknown user", s.IsRangePermitted("mallory", b("a"), nil), auth.ErrPermissionDenied)
	wantErr(t, "admin, not root", s.IsAdminPermitted("alice"), auth.ErrPermissionDenied)
	wantErr(t, "admin, unknown", s.IsAdminPermitted("mallory"), auth.ErrUserNotFound)
	must(t, s.IsAdminPermitted(auth.RootUser))

	s.Disable()
	must(t, s.IsRangePermitted("", b("anything"), nil))
	must(t, s.IsAdminPermitted(""))
}

func TestRootRules(t *testing.T) {
	s := auth.New()
	wantErr(t, "enable without root", s.Enable(secret), auth.ErrRootUserNotExist)
	must(t, s.UserAdd(auth.RootUser, hash(t, "pw"), false))
	wantErr(t, "enable without the root role", s.Enable(secret), auth.ErrRootRoleNotExist)
	// The root role may be granted before it exists, as etcd allows.
	must(t, s.UserGrantRole(auth.RootUser, auth.RootRole))
	wantErr(t, "short secret", s.Enable(secret[:8]), auth.ErrInvalidAuthMgmt)
	if s.Enabled() {
		t.Fatal("enabled by a refused Enable")
	}
	must(t, s.Enable(secret))
	must(t, s.RoleAdd(auth.RootRole))
	before := s.Status()
	wantErr(t, "delete root", s.UserDelete(auth.RootUser), auth.ErrInvalidAuthMgmt)
	wantErr(t, "revoke root role", s.UserRevokeRole(auth.RootUser, auth.RootRole), auth.ErrInvalidAuthMgmt)
	wantErr(t, "delete root role", s.RoleDelete(auth.RootRole), auth.ErrInvalidAuthMgmt)
	if got := s.Status(); got != before {
		t.Fatalf("refused changes moved the status from %+v to %+v", before, got)
	}
	must(t, s.Enable(secret)) // already enabled: nothing
	if got := s.Status(); got != before {
		t.Fatalf("a second Enable moved the status from %+v to %+v", before, got)
	}
	r, err := s.RoleGet(auth.RootRole)
	must(t, err)
	if len(r.Permissions) != 1 || r.Permissions[0].Type != auth.ReadWrite || len(r.Permissions[0].Key) != 0 || !bytes.Equal(r.Permissions[0].End, []byte{0}) {
		t.Fatalf("root role lists %+v", r.Permissions)
	}
	s.Disable()
	must(t, s.UserRevokeRole(auth.RootUser, auth.RootRole))
	must(t, s.RoleDelete(auth.RootRole))
	must(t, s.UserDelete(auth.RootUser))
}

func TestUserAndRoleChanges(t *testing.T) {
	s := auth.New()
	wantErr(t, "empty user", s.UserAdd("", nil, false), auth.ErrUserEmpty)
	wantErr(t, "empty role", s.RoleAdd(""), auth.ErrRoleEmpty)
	must(t, s.UserAdd("u", hash(t, "pw"), false))
	wantErr(t, "dup user", s.UserAdd("u", nil, true), auth.ErrUserAlreadyExist)
	must(t, s.RoleAdd("b"))
	must(t, s.RoleAdd("a"))
	wantErr(t, "dup role", s.RoleAdd("a"), auth.ErrRoleAlreadyExist)
	wantErr(t, "grant unknown role", s.UserGrantRole("u", "zz"), auth.ErrRoleNotFound)
	wantErr(t, "grant to unknown user", s.UserGrantRole("v", "a"), auth.ErrUserNotFound)
	must(t, s.UserGrantRole("u", "b"))
	must(t, s.UserGrantRole("u", "a"))
	rev := s.Revision()
	must(t, s.UserGrantRole("u", "a")) // held: nothing
	if s.Revision() != rev {
		t.Fatal("a repeated grant advanced the revision")
	}
	u, err := s.UserGet("u")
	must(t, err)
	if len(u.Roles) != 2 || u.Roles[0] != "a" || u.Roles[1] != "b" {
		t.Fatalf("roles %v, want [a b]", u.Roles)
	}
	wantErr(t, "revoke not granted", s.UserRevokeRole("u", "zz"), auth.ErrRoleNotGranted)
	wantErr(t, "bad perm type", s.RoleGrantPermission("a", auth.Permission{Type: 3, Key: []byte("k")}), auth.ErrInvalidPermission)
	wantErr(t, "perm to unknown role", s.RoleGrantPermission("zz", auth.Permission{Key: []byte("k")}), auth.ErrRoleNotFound)
	// As etcd's: a permission needs a key, and a range end after it (or
	// none, or "\x00" for every key from key on).
	before := s.Revision()
	wantErr(t, "perm without a key", s.RoleGrantPermission("a", auth.Permission{Type: auth.Read}), auth.ErrInvalidAuthMgmt)
	wantErr(t, "perm over an empty range", s.RoleGrantPermission("a", auth.Permission{Type: auth.Read, Key: []byte("m"), End: []byte("k")}), auth.ErrInvalidAuthMgmt)
	wantErr(t, "perm over no key", s.RoleGrantPermission("a", auth.Permission{Type: auth.Read, Key: []byte("m"), End: []byte("m")}), auth.ErrInvalidAuthMgmt)
	if s.Revision() != before {
		t.Fatalf("refused grants moved the revision %d → %d", before, s.Revision())
	}
	must(t, s.RoleGrantPermission("a", auth.Permission{Type: auth.Read, Key: []byte("z"), End: []byte{0}}))
	must(t, s.RoleRevokePermission("a", []byte("z"), []byte{0}))
	must(t, s.RoleGrantPermission("a", auth.Permission{Type: auth.Read, Key: []byte("k"), End: []byte("m")}))
	must(t, s.RoleGrantPermission("a", auth.Permission{Type: auth.Write, Key: []byte("k"), End: []byte("m")})) // replaces
	must(t, s.RoleGrantPermission("a", auth.Permission{Type: auth.Read, Key: []byte("b")}))
	r, err := s.RoleGet("a")
	must(t, err)
	if len(r.Permissions) != 2 || string(r.Permissions[0].Key) != "b" || r.Permissions[1].Type != auth.Write {
		t.Fatalf("permissions %+v", r.Permissions)
	}
	wantErr(t, "revoke perm not granted", s.RoleRevokePermission("a", []byte("k"), []byte("n")), auth.ErrPermissionNotGranted)
	must(t, s.RoleRevokePermission("a", []byte("k"), []byte("m")))
	must(t, s.RoleDelete("a"))
	u, _ = s.UserGet("u")
	if len(u.Roles) != 1 || u.Roles[0] != "b" {
		t.Fatalf("roles after deleting a: %v", u.Roles)
	}
	if l := s.RoleList(); len(l) != 1 || l[0] != "b" {
		t.Fatalf("roles %v", l)
	}
	wantErr(t, "delete unknown", s.UserDelete("v"), auth.ErrUserNotFound)
	wantErr(t, "get unknown", func() error { _, err := s.UserGet("v"); return err }(), auth.ErrUserNotFound)
}

func TestTokens(t *testing.T) {
	s := enabledStore(t)
	must(t, s.UserAdd("nopw", nil, true))
	now := time.Unix(1000, 0)
	_, err := s.Authenticate("alice", "wrong", now, time.Minute)
	wantErr(t, "wrong password", err, auth.ErrAuthFailed)
	_, err = s.Authenticate("bob", "x", now, time.Minute)
	wantErr(t, "unknown user", err, auth.ErrAuthFailed)
	_, err = s.Authenticate("nopw", "", now, time.Minute)
	wantErr(t, "no-password user", err, auth.ErrAuthFailed)

	tok, err := s.Authenticate("alice", "alicepw", now, time.Minute)
	must(t, err)
	if u, err := s.VerifyToken(tok, now.Add(59*time.Second)); err != nil || u != "alice" {
		t.Fatalf("verify: %q, %v", u, err)
	}
	_, err = s.VerifyToken(tok, now.Add(time.Minute))
	wantErr(t, "expired", err, auth.ErrInvalidAuthToken)
	for i := range tok {
		forged := []byte(tok)
		forged[i] ^= 1
		if _, err := s.VerifyToken(string(forged), now); !errors.Is(err, auth.ErrInvalidAuthToken) {
			t.Fatalf("token with byte %d flipped: %v", i, err)
		}
	}
	_, err = s.VerifyToken("", now)
	wantErr(t, "empty", err, auth.ErrInvalidAuthToken)

	// Another store with the same state verifies it: no shared memory.
	other := auth.New()
	other.Replace(mustRead(t, s.AppendSnapshot(nil)))
	if u, err := other.VerifyToken(tok, now); err != nil || u != "alice" {
		t.Fatalf("verify on a copy: %q, %v", u, err)
	}

	must(t, s.UserChangePassword("alice", hash(t, "new")))
	_, err = s.VerifyToken(tok, now)
	wantErr(t, "after a password change", err, auth.ErrInvalidAuthToken)
	tok, err = s.Authenticate("alice", "new", now, time.Minute)
	must(t, err)
	must(t, s.UserGrantRole("alice", auth.RootRole)) // other changes keep tokens
	if _, err := s.VerifyToken(tok, now); err != nil {
		t.Fatal(err)
	}
	s.Disable()
	_, err = s.VerifyToken(tok, now)
	wantErr(t, "auth disabled", err, auth.ErrInvalidAuthToken)
	_, err = s.Authenticate("alice", "new", now, time.Minute)
	wantErr(t, "authenticate disabled", err, auth.ErrAuthNotEnabled)
	must(t, s.Enable(bytes.Repeat([]byte{8}, auth.MinSecretLen)))
	_, err = s.VerifyToken(tok, now)
	wantErr(t, "under a new secret", err, auth.ErrInvalidAuthToken)
	tok, err = s.IssueToken("nopw", now, time.Minute)
	must(t, err)
	if u, err := s.VerifyToken(tok, now); err != nil || u != "nopw" {
		t.Fatalf("issued token: %q, %v", u, err)
	}
	must(t, s.UserDelete("nopw"))
	_, err = s.VerifyToken(tok, now)
	wantErr(t, "deleted user", err, auth.ErrInvalidAuthToken)
}

func mustRead(t *testing.T, snap []byte) *auth.Store {
	t.Helper()
	s, err := auth.ReadSnapshot(bytes.NewReader(snap))
	must(t, err)
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := enabledStore(t,
		auth.Permission{Type: auth.ReadWrite, Key: []byte("a"), End: []byte("b")},
		auth.Permission{Type: auth.Read, Key: []byte("z"), End: []byte{0}})
	must(t, s.UserAdd("nopw", nil, true))
	snap := s.AppendSnapshot(nil)
	// Exactly its own bytes are read: what follows stays in the reader.
	r := bytes.NewReader(append(append([]byte(nil), snap...), "next"...))
	got, err := auth.ReadSnapshot(r)
	must(t, err)
	if r.Len() != len("next") {
		t.Fatalf("%d bytes left after the snapshot, want 4", r.Len())
	}
	if !bytes.Equal(got.AppendSnapshot(nil), snap) {
		t.Fatal("a restored store writes other bytes")
	}
	if got.Status() != s.Status() {
		t.Fatalf("status %+v, want %+v", got.Status(), s.Status())
	}
	must(t, got.IsPutPermitted("alice", []byte("a")))
	wantErr(t, "restored check", got.IsPutPermitted("alice", []byte("b")), auth.ErrPermissionDenied)
	for i := range snap {
		bad := append([]byte(nil), snap...)
		bad[i] ^= 0x40
		if _, err := auth.ReadSnapshot(bytes.NewReader(bad)); !errors.Is(err, auth.ErrCorruptSnapshot) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for n := range len(snap) {
		if _, err := auth.ReadSnapshot(bytes.NewReader(snap[:n])); !errors.Is(err, auth.ErrCorruptSnapshot) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(auth.New().AppendSnapshot(nil))
	s := auth.New()
	_ = s.UserAdd("u", []byte("h"), false)
	_ = s.RoleAdd("r")
	_ = s.RoleGrantPermission("r", auth.Permission{Key: []byte("k")})
	f.Add(s.AppendSnapshot(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := auth.ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		again, err := auth.ReadSnapshot(bytes.NewReader(got.AppendSnapshot(nil)))
		if err != nil || again.Status() != got.Status() {
			t.Fatalf("a snapshot read back differs: %v", err)
		}
	})
}
