package kvstore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/kvtest"
)

// fastBcrypt keeps the tests' password hashing cheap.
var fastBcrypt = kvstore.WithAuthBcryptCost(4)

// setUpAuth, through n: root (root role), alice with role "reader"
// reading [a, c), then auth enabled.
func setUpAuth(t *testing.T, n *kvstore.Node) {
	t.Helper()
	ctx := context.Background()
	a := n.Auth()
	for _, step := range []func() error{
		func() error { return a.UserAdd(ctx, auth.RootUser, "rootpw") },
		func() error { return a.UserGrantRole(ctx, auth.RootUser, auth.RootRole) },
		func() error { return a.UserAdd(ctx, "alice", "alicepw") },
		func() error { return a.RoleAdd(ctx, "reader") },
		func() error {
			return a.RoleGrantPermission(ctx, "reader", auth.Permission{Type: auth.Read, Key: b("a"), End: b("c")})
		},
		func() error { return a.UserGrantRole(ctx, "alice", "reader") },
		func() error { return a.Enable(ctx) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthReplicated: auth changes made through one member are seen,
// checked and honoured on the others: a token issued by one member is
// verified by another without a raft round, refused errors cross the
// forwarding as the auth package's, and tokens expire after the TTL.
func TestAuthReplicated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(fastBcrypt))
		c.WaitLeader()
		f := c.Followers()
		setUpAuth(t, f[0])
		if err := f[0].Auth().UserAdd(ctx, "alice", "x"); !errors.Is(err, auth.ErrUserAlreadyExist) {
			t.Fatalf("duplicate user through a follower: %v", err)
		}
		if err := f[1].Auth().UserDelete(ctx, auth.RootUser); !errors.Is(err, auth.ErrInvalidAuthMgmt) {
			t.Fatalf("delete root: %v", err)
		}

		// Authenticate on another member: a linearizable read of the user.
		if _, err := f[1].Auth().Authenticate(ctx, "alice", "wrong"); !errors.Is(err, auth.ErrAuthFailed) {
			t.Fatalf("wrong password: %v", err)
		}
		token, err := f[1].Auth().Authenticate(ctx, "alice", "alicepw")
		if err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		for i, n := range c.Nodes() {
			if user, err := n.Auth().VerifyToken(token); err != nil || user != "alice" {
				t.Fatalf("node %d verifies the token as %q, %v", i, user, err)
			}
			if err := n.Auth().IsRangePermitted("alice", b("a"), b("c")); err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
			if err := n.Auth().IsRangePermitted("alice", b("c"), nil); !errors.Is(err, auth.ErrPermissionDenied) {
				t.Fatalf("node %d outside the range: %v", i, err)
			}
		}
		users, err := f[0].Auth().UserList(ctx)
		if err != nil || !slices.Equal(users, []string{"alice", auth.RootUser}) {
			t.Fatalf("users %v, %v", users, err)
		}
		u, err := c.Node(0).Auth().UserGet(ctx, "alice")
		if err != nil || !slices.Equal(u.Roles, []string{"reader"}) {
			t.Fatalf("alice %+v, %v", u, err)
		}

		time.Sleep(kvstore.DefaultAuthTokenTTL)
		if _, err := f[0].Auth().VerifyToken(token); !errors.Is(err, auth.ErrInvalidAuthToken) {
			t.Fatalf("expired token: %v", err)
		}
	})
}

// TestAuthWriteRecheckedAtApply: a write checked at an auth revision
// that a later change overtook fails with ErrAuthOldRevision and changes
// nothing; checked again, it applies.
func TestAuthWriteRecheckedAtApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(fastBcrypt))
		c.WaitLeader()
		n := c.Followers()[0]
		setUpAuth(t, n)
		checked := n.Auth().Revision()
		if err := n.Auth().RoleAdd(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(kvstore.WithAuthRevision(ctx, checked), b("k"), b("v")); !errors.Is(err, auth.ErrAuthOldRevision) {
			t.Fatalf("put checked at an old revision: %v", err)
		}
		if res, err := n.Get(ctx, b("k")); err != nil || len(res.KVs) != 0 {
			t.Fatalf("the refused put wrote: %+v, %v", res, err)
		}
		if _, err := n.Put(kvstore.WithAuthRevision(ctx, n.Auth().Revision()), b("k"), b("v")); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAuthSurvivesRestartSnapshotAndBackup: the auth state comes back
// after a restart from a snapshot, and in a cluster restored from a
// backup, where the users still authenticate.
func TestAuthSurvivesRestartSnapshotAndBackup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(fastBcrypt))
		c.WaitLeader()
		setUpAuth(t, c.Node(0))
		c.WaitApplied()
		want, err := c.Node(0).Auth().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := c.Snapshot(i); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			c.Stop(i)
		}
		for i := range 3 {
			c.Restart(i)
		}
		c.WaitLeader()
		for i, n := range c.Nodes() {
			if st, err := n.Auth().Status(ctx); err != nil || st != want {
				t.Fatalf("node %d after restart: %+v, %v; want %+v", i, st, err, want)
			}
		}
		if _, err := c.Node(2).Auth().Authenticate(ctx, "alice", "alicepw"); err != nil {
			t.Fatalf("after restart: %v", err)
		}

		var backup bytes.Buffer
		if _, err := c.Node(1).Backup(ctx, &backup); err != nil {
			t.Fatal(err)
		}
		restored := restoreCluster(t, backup.Bytes(), "restored")
		r := restored[2]
		st, err := r.Auth().Status(ctx)
		if err != nil || st != want {
			t.Fatalf("restored cluster: %+v, %v; want %+v", st, err, want)
		}
		token, err := r.Auth().Authenticate(ctx, "alice", "alicepw")
		if err != nil {
			t.Fatalf("restored cluster: %v", err)
		}
		if user, err := restored[0].Auth().VerifyToken(token); err != nil || user != "alice" {
			t.Fatalf("restored cluster verifies %q, %v", user, err)
		}
		if err := r.Auth().IsPutPermitted("alice", b("a")); !errors.Is(err, auth.ErrPermissionDenied) {
			t.Fatalf("restored permissions: %v", err)
		}
	})
}
