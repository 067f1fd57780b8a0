package etcdapi_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/internal/testcerts"
	"github.com/kvstore/kvstore/kvtest"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// fastBcrypt keeps the tests' password hashing cheap.
var fastBcrypt = kvtest.WithNodeOptions(kvstore.WithAuthBcryptCost(4))

// userClient is a clientv3 client of c's members that authenticates as
// name.
func (c *testCluster) userClient(t *testing.T, name, password string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
		Username: name, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// enableAuth, through cli: root, alice with role "reader" reading [a, c),
// bob with role "writer" writing [w, x), then auth enabled.
func enableAuth(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := testContext(t)
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "reader", "a", "c", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "reader"); return err },
		func() error { _, err := cli.UserAdd(ctx, "bob", "bobpw"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "writer"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "writer", "w", "x", clientv3.PermissionType(clientv3.PermWrite))
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "bob", "writer"); return err },
		func() error { _, err := cli.Put(ctx, "a1", "v"); return err },
		func() error { _, err := cli.Put(ctx, "z", "secret"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// TestAuthEnforced: with auth enabled, clientv3 clients are served and
// refused as etcd serves and refuses them: by key permission on every KV
// call and every compare and op of a txn, by range on a watch, by the
// keys of a lease on its revocation, and by the root role on the admin
// calls.
func TestAuthEnforced(t *testing.T) {
	c := newCluster(t, 3, fastBcrypt)
	ctx := testContext(t)
	enableAuth(t, c.client(t))
	c.WaitApplied() // enabling takes effect on each member as it applies it

	anon := c.client(t)
	_, err := anon.Get(ctx, "a1")
	wantErr(t, "get without a user", err, rpctypes.ErrUserEmpty)

	alice := c.userClient(t, "alice", "alicepw")
	if res, err := alice.Get(ctx, "a1"); err != nil || len(res.Kvs) != 1 {
		t.Fatalf("alice reads a1: %v, %v", res, err)
	}
	if _, err := alice.Get(ctx, "a", clientv3.WithRange("c")); err != nil {
		t.Fatalf("alice reads [a, c): %v", err)
	}
	_, err = alice.Get(ctx, "z")
	wantErr(t, "alice reads z", err, rpctypes.ErrPermissionDenied)
	_, err = alice.Get(ctx, "a", clientv3.WithRange("d"))
	wantErr(t, "alice reads [a, d)", err, rpctypes.ErrPermissionDenied)
	_, err = alice.Put(ctx, "a1", "w")
	wantErr(t, "alice writes a1", err, rpctypes.ErrPermissionDenied)

	// Txn: every compare and every op of both branches, nested.
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("z"), "=", "secret")).Then(clientv3.OpGet("a1")).Commit()
	wantErr(t, "txn comparing z", err, rpctypes.ErrPermissionDenied)
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("a1"), "=", "v")).Else(clientv3.OpGet("z")).Commit()
	wantErr(t, "txn reading z in else", err, rpctypes.ErrPermissionDenied)
	_, err = alice.Txn(ctx).Then(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpDelete("b")}, nil)).Commit()
	wantErr(t, "nested txn deleting b", err, rpctypes.ErrPermissionDenied)
	if res, err := alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("a1"), "=", "v")).Then(clientv3.OpGet("b")).Commit(); err != nil || !res.Succeeded {
		t.Fatalf("alice's permitted txn: %v, %v", res, err)
	}

	// Write-only bob: puts in [w, x), not with prev_kv (a read), no reads.
	bob := c.userClient(t, "bob", "bobpw")
	if _, err := bob.Put(ctx, "w1", "x"); err != nil {
		t.Fatalf("bob writes w1: %v", err)
	}
	_, err = bob.Put(ctx, "w1", "y", clientv3.WithPrevKV())
	wantErr(t, "bob writes with prev_kv", err, rpctypes.ErrPermissionDenied)
	_, err = bob.Get(ctx, "w1")
	wantErr(t, "bob reads w1", err, rpctypes.ErrPermissionDenied)
	_, err = bob.Delete(ctx, "w", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("bob deletes prefix w: %v", err)
	}

	// Watch: created only over a permitted range.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wresp, ok := <-alice.Watch(wctx, "z")
	if !ok || !wresp.Canceled || wresp.Err() == nil || !strings.Contains(wresp.Err().Error(), "permission denied") {
		t.Fatalf("alice watches z: %+v, %v", wresp, wresp.Err())
	}
	w := alice.Watch(wctx, "a", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if wresp := <-w; !wresp.Created || wresp.Canceled {
		t.Fatalf("alice watches prefix a: %+v", wresp)
	}

	// Lease revocation deletes the lease's keys: it needs write on them.
	root := c.userClient(t, "root", "rootpw")
	lease, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "a2", "leased", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Revoke(ctx, lease.ID)
	wantErr(t, "alice revokes a lease on a2", err, rpctypes.ErrPermissionDenied)
	_, err = bob.Put(ctx, "w2", "x", clientv3.WithLease(lease.ID))
	wantErr(t, "bob attaches a key to a lease holding a2", err, rpctypes.ErrPermissionDenied)
	if _, err := root.Revoke(ctx, lease.ID); err != nil {
		t.Fatalf("root revokes: %v", err)
	}

	// Admin calls need the root role.
	_, err = alice.Compact(ctx, 2)
	wantErr(t, "alice compacts", err, rpctypes.ErrPermissionDenied)
	_, err = alice.UserList(ctx)
	wantErr(t, "alice lists users", err, rpctypes.ErrPermissionDenied)
	_, err = alice.AuthDisable(ctx)
	wantErr(t, "alice disables auth", err, rpctypes.ErrPermissionDenied)
	_, err = alice.AuthEnable(ctx)
	wantErr(t, "alice enables auth", err, rpctypes.ErrPermissionDenied)
	if _, err := alice.AlarmList(ctx); err != nil {
		t.Fatalf("alice lists alarms (etcd checks none): %v", err)
	}
	if u, err := alice.UserGet(ctx, "alice"); err != nil || len(u.Roles) != 1 {
		t.Fatalf("alice reads herself: %v, %v", u, err)
	}
	if _, err := alice.RoleGet(ctx, "reader"); err != nil {
		t.Fatalf("alice reads her role: %v", err)
	}
	_, err = alice.RoleGet(ctx, "writer")
	wantErr(t, "alice reads another role", err, rpctypes.ErrPermissionDenied)
	if st, err := alice.AuthStatus(ctx); err != nil || !st.Enabled {
		t.Fatalf("auth status: %v, %v", st, err)
	}
	if _, err := root.Compact(ctx, 2); err != nil {
		t.Fatalf("root compacts: %v", err)
	}
	if users, err := root.UserList(ctx); err != nil || len(users.Users) != 3 {
		t.Fatalf("root lists users: %v, %v", users, err)
	}
	_, err = root.UserDelete(ctx, "root")
	wantErr(t, "delete root", err, rpctypes.ErrInvalidAuthMgmt)

	// A permission granted on one member holds at once through another.
	if _, err := root.RoleGrantPermission(ctx, "reader", "z", "", clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	if res, err := alice.Get(ctx, "z"); err != nil || string(res.Kvs[0].Value) != "secret" {
		t.Fatalf("alice reads z once granted: %v, %v", res, err)
	}

	if _, err := root.AuthDisable(ctx); err != nil {
		t.Fatal(err)
	}
	c.WaitApplied()
	if _, err := anon.Get(ctx, "z"); err != nil {
		t.Fatalf("get without a user once auth is disabled: %v", err)
	}
	_, err = alice.Authenticate(ctx, "alice", "alicepw")
	wantErr(t, "authenticate with auth disabled", err, rpctypes.ErrAuthNotEnabled)
}

// TestAuthBadTokens: a forged token, a token of a deleted user, a wrong
// password and an expired token are answered with etcd's errors, and the
// server keeps serving.
func TestAuthBadTokens(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt, kvtest.WithNodeOptions(kvstore.WithAuthTokenTTL(time.Second)))
	ctx := testContext(t)
	enableAuth(t, c.client(t))
	c.WaitApplied() // enabling takes effect on each member as it applies it

	conn, err := grpc.NewClient(c.endpoints[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authc, kv := pb.NewAuthClient(conn), pb.NewKVClient(conn)
	_, err = authc.Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "wrong"})
	wantErr(t, "wrong password", rpctypes.Error(err), rpctypes.ErrAuthFailed)
	_, err = authc.Authenticate(ctx, &pb.AuthenticateRequest{Name: "nobody", Password: "x"})
	wantErr(t, "unknown user", rpctypes.Error(err), rpctypes.ErrAuthFailed)

	get := func(token string) error {
		_, err := kv.Range(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, token), &pb.RangeRequest{Key: []byte("a1")})
		return rpctypes.Error(err)
	}
	wantErr(t, "garbage token", get("not-a-token"), rpctypes.ErrInvalidAuthToken)
	res, err := authc.Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	forged := []byte(res.Token)
	forged[len(forged)-2] ^= 1 // the signature
	wantErr(t, "forged token", get(string(forged)), rpctypes.ErrInvalidAuthToken)
	other := strings.Replace(res.Token, ".", ".x", 1) // the payload
	wantErr(t, "altered token", get(other), rpctypes.ErrInvalidAuthToken)

	// A clientv3 client, authenticated now, outlives its token below.
	alice := c.userClient(t, "alice", "alicepw")
	if _, err := alice.Get(ctx, "a1"); err != nil {
		t.Fatal(err)
	}

	// The real token reads until it expires (the TTL is a second).
	if err := get(res.Token); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for get(res.Token) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the token did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantErr(t, "expired token", get(res.Token), rpctypes.ErrInvalidAuthToken)

	// A deleted user's token is refused at once.
	res, err = authc.Authenticate(ctx, &pb.AuthenticateRequest{Name: "bob", Password: "bobpw"})
	if err != nil {
		t.Fatal(err)
	}
	root := c.userClient(t, "root", "rootpw")
	if _, err := root.UserDelete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "deleted user's token", get(res.Token), rpctypes.ErrInvalidAuthToken)

	// Bad auth management requests: etcd's errors, and nothing changes.
	before, err := root.AuthStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = root.UserAdd(ctx, "", "x")
	wantErr(t, "empty user name", err, rpctypes.ErrUserEmpty)
	_, err = root.UserAdd(ctx, "alice", "x")
	wantErr(t, "user added twice", err, rpctypes.ErrUserAlreadyExist)
	_, err = root.RoleAdd(ctx, "")
	wantErr(t, "empty role name", err, rpctypes.ErrRoleEmpty)
	_, err = root.UserGrantRole(ctx, "alice", "nope")
	wantErr(t, "grant an unknown role", err, rpctypes.ErrRoleNotFound)
	_, err = root.UserRevokeRole(ctx, "alice", "writer")
	wantErr(t, "revoke a role not granted", err, rpctypes.ErrRoleNotGranted)
	_, err = root.RoleRevokePermission(ctx, "reader", "q", "")
	wantErr(t, "revoke a permission not granted", err, rpctypes.ErrPermissionNotGranted)
	_, err = root.UserRevokeRole(ctx, "root", "root")
	wantErr(t, "root loses the root role", err, rpctypes.ErrInvalidAuthMgmt)
	_, err = pb.NewAuthClient(conn).RoleGrantPermission(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, rootToken(t, ctx, authc)),
		&pb.AuthRoleGrantPermissionRequest{Name: "reader"})
	wantErr(t, "grant no permission", err, rpctypes.ErrGRPCPermissionNotGiven)
	if after, err := root.AuthStatus(ctx); err != nil || after.AuthRevision != before.AuthRevision {
		t.Fatalf("auth revision %d after refused changes, was %d (%v)", after.AuthRevision, before.AuthRevision, err)
	}

	// The client's token, issued before the one that expired, expired
	// too: clientv3 authenticates again by itself.
	if _, err := alice.Get(ctx, "a1"); err != nil {
		t.Fatalf("alice after her token expired: %v", err)
	}
}

// TestAuthClientCert: with WithClientCertAuth, a request without a token
// is the user its verified client certificate names.
func TestAuthClientCert(t *testing.T) {
	kc := kvtest.NewCluster(t, 1, fastBcrypt)
	node := kc.WaitLeader()
	ca, err := testcerts.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := ca.TLSConfig("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := etcdapi.NewServer(node, etcdapi.WithClientCertAuth())
	gs := grpc.NewServer(append(etcdapi.ServerOptions(), grpc.Creds(credentials.NewTLS(serverTLS)))...)
	srv.Register(gs)
	served := make(chan struct{})
	go func() { defer close(served); gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-served; srv.Close() })

	ctx := testContext(t)
	client := func(cn string) *clientv3.Client {
		tlsCfg, err := ca.TLSConfig(cn)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{lis.Addr().String()}, TLS: tlsCfg, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	a := node.Auth()
	for _, step := range []error{
		a.UserAdd(ctx, "root", "rootpw"), a.UserGrantRole(ctx, "root", "root"),
		a.UserAddNoPassword(ctx, "alice"), a.RoleAdd(ctx, "reader"),
		a.RoleGrantPermission(ctx, "reader", authPerm("a", "c")), a.UserGrantRole(ctx, "alice", "reader"),
		a.Enable(ctx),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	alice := client("alice")
	if _, err := alice.Get(ctx, "a1"); err != nil {
		t.Fatalf("alice by certificate reads a1: %v", err)
	}
	_, err = alice.Get(ctx, "z")
	wantErr(t, "alice by certificate reads z", err, rpctypes.ErrPermissionDenied)
	if _, err := client("root").Put(ctx, "z", "v"); err != nil {
		t.Fatalf("root by certificate writes: %v", err)
	}
	_, err = client("mallory").Get(ctx, "a1")
	wantErr(t, "unknown user by certificate", err, rpctypes.ErrPermissionDenied)
}

// TestAuthAdminCallsNeedRoot: every call etcd reserves for the root role
// is refused to another user before its handler runs (an empty request
// decodes as any of them), Maintenance.Snapshot's stream included.
func TestAuthAdminCallsNeedRoot(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	ctx := testContext(t)
	enableAuth(t, c.client(t))
	conn, err := grpc.NewClient(c.endpoints[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, res.Token)
	for _, method := range etcdapi.AdminMethods() {
		var err error
		if strings.HasSuffix(method, "/Snapshot") {
			var stream grpc.ClientStream
			if stream, err = conn.NewStream(actx, &grpc.StreamDesc{ServerStreams: true}, method); err == nil {
				if err = stream.SendMsg(&emptypb.Empty{}); err == nil {
					stream.CloseSend()
					err = stream.RecvMsg(&emptypb.Empty{})
				}
			}
		} else {
			err = conn.Invoke(actx, method, &emptypb.Empty{}, &emptypb.Empty{})
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s as alice: %v, want PermissionDenied", method, err)
		}
	}
}

func rootToken(t *testing.T, ctx context.Context, authc pb.AuthClient) string {
	t.Helper()
	res, err := authc.Authenticate(ctx, &pb.AuthenticateRequest{Name: "root", Password: "rootpw"})
	if err != nil {
		t.Fatal(err)
	}
	return res.Token
}

// TestAuthLeaseTimeToLive: a lease's time-to-live names its keys, so with
// auth enabled it needs read permission on every key attached to the
// lease, as etcd's (CVE-2023-32082); a lease holding only readable keys,
// or none, is answered.
func TestAuthLeaseTimeToLive(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	ctx := testContext(t)
	enableAuth(t, c.client(t))
	c.WaitApplied()

	root := c.userClient(t, "root", "rootpw")
	alice := c.userClient(t, "alice", "alicepw")
	secret, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "z2", "leased", clientv3.WithLease(secret.ID)); err != nil {
		t.Fatal(err)
	}
	readable, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "a3", "leased", clientv3.WithLease(readable.ID)); err != nil {
		t.Fatal(err)
	}
	empty, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}

	for _, opts := range [][]clientv3.LeaseOption{{clientv3.WithAttachedKeys()}, nil} {
		_, err = alice.TimeToLive(ctx, secret.ID, opts...)
		wantErr(t, "alice's time-to-live of a lease holding z2", err, rpctypes.ErrPermissionDenied)
	}
	if res, err := alice.TimeToLive(ctx, readable.ID, clientv3.WithAttachedKeys()); err != nil || len(res.Keys) != 1 {
		t.Fatalf("alice's time-to-live of a lease holding a3: %v, %v", res, err)
	}
	if _, err := alice.TimeToLive(ctx, empty.ID, clientv3.WithAttachedKeys()); err != nil {
		t.Fatalf("alice's time-to-live of a lease holding nothing: %v", err)
	}
	if res, err := root.TimeToLive(ctx, secret.ID, clientv3.WithAttachedKeys()); err != nil || len(res.Keys) != 1 {
		t.Fatalf("root's time-to-live of a lease holding z2: %v, %v", res, err)
	}
	_, err = c.client(t).TimeToLive(ctx, empty.ID)
	wantErr(t, "time-to-live without a user", err, rpctypes.ErrUserEmpty)
}

// TestAuthAdminCallCheckedAtApply: an admin call carries the auth revision
// its root role was checked at, so one checked before the caller lost the
// root role and applied after is refused with ErrGRPCAuthOldRevision and
// changes nothing (clientv3 then checks again), as etcd's apply-time
// check refuses it.
func TestAuthAdminCallCheckedAtApply(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	ctx := testContext(t)
	enableAuth(t, c.client(t))
	root := c.userClient(t, "root", "rootpw")
	if _, err := root.UserAdd(ctx, "admin", "adminpw"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "admin", "root"); err != nil {
		t.Fatal(err)
	}
	node := c.Node(0)
	token, err := node.Auth().Authenticate(ctx, "admin", "adminpw")
	if err != nil {
		t.Fatal(err)
	}
	srv := etcdapi.NewServer(node)
	defer srv.Close()
	callCtx := metadata.NewIncomingContext(ctx, metadata.Pairs(rpctypes.TokenFieldNameGRPC, token))
	checkedCtx, err := etcdapi.Authorize(srv, callCtx, "/etcdserverpb.Auth/RoleGrantPermission",
		&pb.AuthRoleGrantPermissionRequest{Name: "reader"})
	if err != nil {
		t.Fatalf("admin's call checked while admin holds the root role: %v", err)
	}
	// The root role is revoked between the check and the proposal.
	if _, err := root.UserRevokeRole(ctx, "admin", "root"); err != nil {
		t.Fatal(err)
	}
	err = node.Auth().RoleGrantPermission(checkedCtx, "reader", authPerm("z", ""))
	wantErr(t, "a grant checked before the revocation, applied after", err, auth.ErrAuthOldRevision)
	role, err := node.Auth().RoleGet(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range role.Permissions {
		if string(p.Key) == "z" {
			t.Fatalf("the refused grant changed the role: %+v", role)
		}
	}
}

// TestAuthWriteCheckedBeforeEnableRefused: a write let through while auth
// was disabled on the serving member (a member that had not yet applied an
// AuthEnable committed through another) is refused at apply if auth is
// enabled by then, with ErrGRPCAuthOldRevision (clientv3 then checks it
// again, against the enabled state), as etcd's apply-time check refuses
// it; a write applied while auth stays disabled is not refused for auth
// changes in between.
func TestAuthWriteCheckedBeforeEnableRefused(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	ctx := testContext(t)
	node := c.Node(0)
	srv := etcdapi.NewServer(node)
	defer srv.Close()
	put := &pb.PutRequest{Key: []byte("z"), Value: []byte("v")}

	checkedCtx, err := etcdapi.Authorize(srv, ctx, "/etcdserverpb.KV/Put", put)
	if err != nil {
		t.Fatalf("a put checked with auth disabled: %v", err)
	}
	if err := node.Auth().RoleAdd(ctx, "unrelated"); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Put(checkedCtx, put.Key, put.Value); err != nil {
		t.Fatalf("a put checked and applied with auth disabled, a role added in between: %v", err)
	}

	checkedCtx, err = etcdapi.Authorize(srv, ctx, "/etcdserverpb.KV/Put", put)
	if err != nil {
		t.Fatal(err)
	}
	enableAuth(t, c.client(t))
	before := node.Status().Revision
	_, err = node.Put(checkedCtx, put.Key, []byte("unauthenticated"))
	wantErr(t, "a put checked with auth disabled, applied with it enabled", err, auth.ErrAuthOldRevision)
	if got := node.Status().Revision; got != before {
		t.Fatalf("the refused put changed the store: revision %d → %d", before, got)
	}
}

// TestAuthDisabledRangeServedWithCallersContext: with auth disabled, a
// Range is served with the caller's own context: a read is never refused
// at apply, so it carries no auth revision (and costs no allocation for
// one).
func TestAuthDisabledRangeServedWithCallersContext(t *testing.T) {
	c := newCluster(t, 1, fastBcrypt)
	ctx := testContext(t)
	srv := etcdapi.NewServer(c.Node(0))
	defer srv.Close()
	for _, r := range []*pb.RangeRequest{{Key: []byte("k")}, {Key: []byte("k"), Serializable: true}} {
		checkedCtx, err := etcdapi.Authorize(srv, ctx, "/etcdserverpb.KV/Range", r)
		if err != nil {
			t.Fatalf("a range checked with auth disabled: %v", err)
		}
		if checkedCtx != ctx {
			t.Errorf("a range (serializable %v) checked with auth disabled is served with a context of its own", r.Serializable)
		}
	}
}

// TestAuthEveryCallChecked: with auth enabled, every unary call of every
// service Register registers is refused to a caller without a user,
// except those etcd leaves open. A call added to a service without a
// check fails here.
func TestAuthEveryCallChecked(t *testing.T) {
	open := map[string]string{
		"/etcdserverpb.Auth/Authenticate":      "how a user gets a token",
		"/etcdserverpb.Auth/AuthStatus":        "etcd answers anyone",
		"/etcdserverpb.Lease/LeaseGrant":       "etcd answers anyone",
		"/etcdserverpb.Lease/LeaseLeases":      "etcd answers anyone (IDs only)",
		"/etcdserverpb.Lease/LeaseRevoke":      "checked against the lease's keys: none for an unknown lease (TestAuthEnforced)",
		"/etcdserverpb.Cluster/MemberList":     "etcd answers anyone",
		"/etcdserverpb.Maintenance/Status":     "etcd answers anyone",
		"/etcdserverpb.Maintenance/Alarm":      "etcd answers anyone",
		"/etcdserverpb.Maintenance/MoveLeader": "etcd answers anyone",
		"/etcdserverpb.Maintenance/Downgrade":  "etcd answers anyone",
		"/etcdserverpb.KV/Txn":                 "an empty txn touches no key, and etcd lets it through; compares and ops are checked (TestAuthEnforced)",
		"/grpc.health.v1.Health/Check":         "not etcd's API",
		"/grpc.health.v1.Health/List":          "not etcd's API",
	}
	c := newCluster(t, 1, fastBcrypt)
	ctx := testContext(t)
	enableAuth(t, c.client(t))

	gs := grpc.NewServer()
	etcdapi.NewServer(c.Node(0)).Register(gs)
	conn, err := grpc.NewClient(c.endpoints[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	calls := 0
	for service, info := range gs.GetServiceInfo() {
		for _, m := range info.Methods {
			method := "/" + service + "/" + m.Name
			if m.IsClientStream || m.IsServerStream {
				continue // Watch checks each watch it creates; Snapshot is an admin call (TestAuthAdminCallsNeedRoot); LeaseKeepAlive etcd answers anyone
			}
			if _, ok := open[method]; ok {
				continue
			}
			calls++
			err := conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
			if !errors.Is(rpctypes.Error(err), rpctypes.ErrUserEmpty) && status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s without a user: %v, want ErrGRPCUserEmpty or PermissionDenied", method, err)
			}
		}
	}
	if calls < 25 {
		t.Fatalf("only %d calls checked: the services are not all registered", calls)
	}
}
