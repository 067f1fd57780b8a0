package etcdapi

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Enforcement of auth, as etcd's: while auth is enabled every KV, Txn,
// Watch, lease revocation and lease time-to-live is checked against the
// caller's key permissions, and the admin calls need the root role. The
// caller is the user of the request's token (gRPC metadata "token", as
// clientv3 sends it), or, without one and with WithClientCertAuth, the
// common name of its verified client certificate; a request with neither
// is refused with ErrGRPCUserEmpty, one with an invalid or expired token
// with ErrGRPCInvalidAuthToken (clientv3 then authenticates again).
//
// The check runs on the member serving the request, against the auth state
// that member has applied (kvstore.Auth's checks). A write, an auth change
// or a Compact carries the auth revision it was checked at
// (kvstore.WithAuthRevision), and is refused at apply with
// ErrGRPCAuthOldRevision if the auth state changed in between, which
// clientv3 retries. A linearizable read first catches the member's auth
// state up (kvstore.Auth.Sync, one read-index round), so it is judged by
// the state as of the request, as etcd judges it; a serializable read is
// judged by the member's state as it is, as it is served from it (see
// DESIGN.md).
//
// Register registers every service wrapped in its checked* type below, so
// no service is served unchecked.

// WithClientCertAuth takes the user of a request that carries no token
// from the common name of the client's verified TLS certificate, as
// etcd's --client-cert-auth. The gRPC server must verify client
// certificates (tls.RequireAndVerifyClientCert) for it to mean anything.
func WithClientCertAuth() Option {
	return func(s *Server) { s.clientCertAuth = true }
}

// adminMethods are the calls that need the root role while auth is
// enabled: etcd's (auth management, membership changes, Defragment,
// Snapshot, Hash, HashKV), and Compact, which etcd leaves to any user but
// which destroys every user's history. Alarm, Status, MoveLeader and
// Downgrade are left unchecked, as etcd leaves them.
var adminMethods = map[string]bool{
	"/etcdserverpb.Auth/AuthEnable":           true,
	"/etcdserverpb.Auth/AuthDisable":          true,
	"/etcdserverpb.Auth/UserAdd":              true,
	"/etcdserverpb.Auth/UserList":             true,
	"/etcdserverpb.Auth/UserDelete":           true,
	"/etcdserverpb.Auth/UserChangePassword":   true,
	"/etcdserverpb.Auth/UserGrantRole":        true,
	"/etcdserverpb.Auth/UserRevokeRole":       true,
	"/etcdserverpb.Auth/RoleAdd":              true,
	"/etcdserverpb.Auth/RoleList":             true,
	"/etcdserverpb.Auth/RoleDelete":           true,
	"/etcdserverpb.Auth/RoleGrantPermission":  true,
	"/etcdserverpb.Auth/RoleRevokePermission": true,
	"/etcdserverpb.KV/Compact":                true,
	"/etcdserverpb.Cluster/MemberAdd":         true,
	"/etcdserverpb.Cluster/MemberRemove":      true,
	"/etcdserverpb.Cluster/MemberUpdate":      true,
	"/etcdserverpb.Cluster/MemberPromote":     true,
	"/etcdserverpb.Maintenance/Defragment":    true,
	"/etcdserverpb.Maintenance/Hash":          true,
	"/etcdserverpb.Maintenance/HashKV":        true,
	"/etcdserverpb.Maintenance/Snapshot":      true,
}

// The services as Register registers them: each call that etcd checks is
// authorized here before the service's own handler runs; the others pass
// straight through (the embedded service).

type checkedKV struct {
	pb.KVServer
	s *Server
}

func (c checkedKV) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.KV/Range", r, c.KVServer.Range)
}

func (c checkedKV) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.KV/Put", r, c.KVServer.Put)
}

func (c checkedKV) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.KV/DeleteRange", r, c.KVServer.DeleteRange)
}

func (c checkedKV) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.KV/Txn", r, c.KVServer.Txn)
}

func (c checkedKV) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.KV/Compact", r, c.KVServer.Compact)
}

type checkedLease struct {
	pb.LeaseServer
	s *Server
}

func (c checkedLease) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Lease/LeaseRevoke", r, c.LeaseServer.LeaseRevoke)
}

func (c checkedLease) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Lease/LeaseTimeToLive", r, c.LeaseServer.LeaseTimeToLive)
}

type checkedCluster struct {
	pb.ClusterServer
	s *Server
}

func (c checkedCluster) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Cluster/MemberAdd", r, c.ClusterServer.MemberAdd)
}

func (c checkedCluster) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Cluster/MemberRemove", r, c.ClusterServer.MemberRemove)
}

func (c checkedCluster) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Cluster/MemberUpdate", r, c.ClusterServer.MemberUpdate)
}

func (c checkedCluster) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Cluster/MemberPromote", r, c.ClusterServer.MemberPromote)
}

type checkedMaintenance struct {
	pb.MaintenanceServer
	s *Server
}

func (c checkedMaintenance) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Maintenance/Defragment", r, c.MaintenanceServer.Defragment)
}

func (c checkedMaintenance) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Maintenance/Hash", r, c.MaintenanceServer.Hash)
}

func (c checkedMaintenance) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Maintenance/HashKV", r, c.MaintenanceServer.HashKV)
}

func (c checkedMaintenance) Snapshot(r *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	if err := c.s.checkAdmin(stream.Context()); err != nil {
		return err
	}
	return c.MaintenanceServer.Snapshot(r, stream)
}

type checkedAuth struct {
	pb.AuthServer
	s *Server
}

func (c checkedAuth) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/AuthEnable", r, c.AuthServer.AuthEnable)
}

func (c checkedAuth) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/AuthDisable", r, c.AuthServer.AuthDisable)
}

func (c checkedAuth) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/UserAdd", r, c.AuthServer.UserAdd)
}

func (c checkedAuth) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/UserGet", r, c.AuthServer.UserGet)
}

func (c checkedAuth) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/UserList", r, c.AuthServer.UserList)
}

func (c checkedAuth) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/UserDelete", r, c.AuthServer.UserDelete)
}

func (c checkedAuth) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/UserChangePassword", r, c.AuthServer.UserChangePassword)
}

func (c checkedAuth) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/UserGrantRole", r, c.AuthServer.UserGrantRole)
}

func (c checkedAuth) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/UserRevokeRole", r, c.AuthServer.UserRevokeRole)
}

func (c checkedAuth) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/RoleAdd", r, c.AuthServer.RoleAdd)
}

func (c checkedAuth) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/RoleGet", r, c.AuthServer.RoleGet)
}

func (c checkedAuth) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/RoleList", r, c.AuthServer.RoleList)
}

func (c checkedAuth) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/RoleDelete", r, c.AuthServer.RoleDelete)
}

func (c checkedAuth) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/RoleGrantPermission", r, c.AuthServer.RoleGrantPermission)
}

func (c checkedAuth) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return checked(c.s, ctx, "/etcdserverpb.Auth/RoleRevokePermission", r, c.AuthServer.RoleRevokePermission)
}

// checked authorizes one unary call, then serves it with the context the
// check returned.
func checked[Req, Resp any](s *Server, ctx context.Context, method string, r Req, serve func(context.Context, Req) (Resp, error)) (Resp, error) {
	ctx, err := s.authorize(ctx, method, r)
	if err != nil {
		var none Resp
		return none, err
	}
	return serve(ctx, r)
}

// authorize checks one unary call and returns the context to serve it
// with: for a write, carrying the auth revision it was checked at.
func (s *Server) authorize(ctx context.Context, method string, req any) (context.Context, error) {
	a := s.node.Auth()
	if !a.Enabled() {
		if _, ok := req.(*pb.RangeRequest); ok {
			// Nothing to check, and a read is never refused at apply:
			// no revision to carry (and no context to allocate).
			return ctx, nil
		}
		// Nothing to check, but the write still carries the revision:
		// applied after an AuthEnable this member had not applied yet, it
		// is refused, and checked again against the enabled state.
		return kvstore.WithAuthRevision(ctx, a.Revision()), nil
	}
	if adminMethods[method] {
		// The revision goes with the call too: one checked before the
		// caller lost the root role is refused at apply (auth changes and
		// Compact; membership changes are not raft commands, and are
		// judged at the check alone).
		rev := a.Revision()
		if err := s.checkAdmin(ctx); err != nil {
			return ctx, err
		}
		return kvstore.WithAuthRevision(ctx, rev), nil
	}
	if linearizableRead(req) {
		// As etcd, judge a linearizable read by the auth state as of the
		// request: a permission granted or revoked through another member
		// just before counts.
		if err := a.Sync(ctx); err != nil {
			return ctx, toGRPC(err)
		}
	}
	rev := a.Revision() // before the check: a change after it refuses the write
	var err error
	switch r := req.(type) {
	case *pb.RangeRequest:
		err = s.checkRange(ctx, r.Key, r.RangeEnd)
	case *pb.PutRequest:
		err = s.checkTxnOp(ctx, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: r}})
		if err == nil && r.Lease != 0 {
			// As etcd: attaching a key to a lease the caller could not
			// revoke (it holds keys the caller may not write) is refused.
			err = s.checkLeaseRevoke(ctx, r.Lease)
		}
	case *pb.DeleteRangeRequest:
		err = s.checkTxnOp(ctx, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}})
	case *pb.TxnRequest:
		err = s.checkTxn(ctx, r)
	case *pb.LeaseRevokeRequest:
		err = s.checkLeaseRevoke(ctx, r.ID)
	case *pb.LeaseTimeToLiveRequest:
		err = s.checkLeaseTimeToLive(ctx, r.ID)
	case *pb.AuthUserGetRequest:
		err = s.checkUserGet(ctx, r.Name)
	case *pb.AuthRoleGetRequest:
		err = s.checkRoleGet(ctx, r.Role)
	default:
		return ctx, nil // Authenticate, AuthStatus, AuthEnable, lease grants, status...
	}
	if err != nil {
		return ctx, err
	}
	return kvstore.WithAuthRevision(ctx, rev), nil
}

// linearizableRead reports whether req is a read that waits for the
// cluster's latest state: a Range not serializable, or a Txn of ranges
// only (the node serves those through a read index).
func linearizableRead(req any) bool {
	switch r := req.(type) {
	case *pb.RangeRequest:
		return !r.Serializable
	case *pb.TxnRequest:
		return readOnlyTxn(r)
	}
	return false
}

func readOnlyTxn(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch o := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
			case *pb.RequestOp_RequestTxn:
				if !readOnlyTxn(o.RequestTxn) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// user returns the caller of ctx: the user of its token, else the common
// name of its client certificate with WithClientCertAuth, else "".
func (s *Server) user(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	tokens := md.Get(rpctypes.TokenFieldNameGRPC)
	if len(tokens) == 0 {
		tokens = md.Get(rpctypes.TokenFieldNameSwagger)
	}
	if len(tokens) > 0 {
		user, err := s.node.Auth().VerifyToken(tokens[0])
		if err != nil {
			return "", rpctypes.ErrGRPCInvalidAuthToken
		}
		return user, nil
	}
	if s.clientCertAuth {
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				for _, chain := range info.State.VerifiedChains {
					if len(chain) > 0 && chain[0].Subject.CommonName != "" {
						return chain[0].Subject.CommonName, nil
					}
				}
			}
		}
	}
	return "", nil
}

// check runs one permission check for the caller of ctx.
func (s *Server) check(ctx context.Context, permitted func(user string) error) error {
	user, err := s.user(ctx)
	if err != nil {
		return err
	}
	return toGRPC(permitted(user))
}

func (s *Server) checkAdmin(ctx context.Context) error {
	if !s.node.Auth().Enabled() {
		return nil
	}
	return s.check(ctx, s.node.Auth().IsAdminPermitted)
}

func (s *Server) checkRange(ctx context.Context, key, end []byte) error {
	return s.check(ctx, func(user string) error { return s.node.Auth().IsRangePermitted(user, key, end) })
}

// checkTxn checks every compare (a read of its key or range) and every
// op of both branches, nested txns included, as etcd's.
func (s *Server) checkTxn(ctx context.Context, r *pb.TxnRequest) error {
	for _, c := range r.Compare {
		if err := s.checkRange(ctx, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := s.checkTxnOp(ctx, op); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkTxnOp checks one op: a range reads, a put writes its key (and reads
// it for prev_kv), a delete writes its range (and reads it for prev_kv).
func (s *Server) checkTxnOp(ctx context.Context, op *pb.RequestOp) error {
	a := s.node.Auth()
	switch r := op.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return s.checkRange(ctx, r.RequestRange.Key, r.RequestRange.RangeEnd)
	case *pb.RequestOp_RequestPut:
		put := r.RequestPut
		if err := s.check(ctx, func(user string) error { return a.IsPutPermitted(user, put.Key) }); err != nil {
			return err
		}
		if put.PrevKv {
			return s.checkRange(ctx, put.Key, nil)
		}
	case *pb.RequestOp_RequestDeleteRange:
		del := r.RequestDeleteRange
		if err := s.check(ctx, func(user string) error { return a.IsDeleteRangePermitted(user, del.Key, del.RangeEnd) }); err != nil {
			return err
		}
		if del.PrevKv {
			return s.checkRange(ctx, del.Key, del.RangeEnd)
		}
	case *pb.RequestOp_RequestTxn:
		return s.checkTxn(ctx, r.RequestTxn)
	}
	return nil
}

// checkLeaseRevoke checks that the caller may write every key attached to
// the lease (revoking deletes them), as etcd's. An unknown lease is left
// to the handler to answer.
func (s *Server) checkLeaseRevoke(ctx context.Context, id int64) error {
	if s.checkAdmin(ctx) == nil {
		return nil // the root role may write every key
	}
	keys, err := s.leaseKeys(ctx, id)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if err := s.check(ctx, func(user string) error { return s.node.Auth().IsPutPermitted(user, key) }); err != nil {
			return err
		}
	}
	return nil
}

// checkLeaseTimeToLive checks that the caller may read every key attached
// to the lease, whose names the answer can hold, as etcd's (since the fix
// of CVE-2023-32082): whether or not the request asks for the keys, and
// with no user at all refused as etcd refuses it. An unknown lease is left
// to the handler to answer.
func (s *Server) checkLeaseTimeToLive(ctx context.Context, id int64) error {
	user, err := s.user(ctx)
	if err != nil {
		return err
	}
	if user == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	if s.node.Auth().IsAdminPermitted(user) == nil {
		return nil // the root role may read every key
	}
	keys, err := s.leaseKeys(ctx, id)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if err := toGRPC(s.node.Auth().IsRangePermitted(user, key, nil)); err != nil {
			return err
		}
	}
	return nil
}

// leaseKeys returns the keys attached to a lease, none for an unknown
// lease. Any other failure to read them is returned: a check that cannot
// see the keys does not let the call through.
func (s *Server) leaseKeys(ctx context.Context, id int64) ([][]byte, error) {
	ttl, err := s.node.TimeToLive(ctx, id, true)
	switch {
	case errors.Is(err, kvstore.ErrLeaseNotFound):
		return nil, nil
	case err != nil:
		return nil, toGRPC(err)
	}
	return ttl.Keys, nil
}

// checkUserGet lets a user read itself; anyone else needs the root role.
func (s *Server) checkUserGet(ctx context.Context, name string) error {
	user, err := s.user(ctx)
	if err != nil {
		return err
	}
	if user != "" && user == name {
		return nil
	}
	return toGRPC(s.node.Auth().IsAdminPermitted(user))
}

// checkRoleGet lets a user read a role it holds; anyone else needs the
// root role.
func (s *Server) checkRoleGet(ctx context.Context, role string) error {
	user, err := s.user(ctx)
	if err != nil {
		return err
	}
	if user != "" {
		if u, err := s.node.Auth().UserGet(ctx, user); err == nil {
			for _, r := range u.Roles {
				if r == role {
					return nil
				}
			}
		}
	}
	return toGRPC(s.node.Auth().IsAdminPermitted(user))
}

// refuseWatch is the answer to a watch creation the caller may not make
// (nil if it may): the watch is created and cancelled at once, with
// etcd's reason, as etcd answers.
func (ws *watchStream) refuseWatch(r *pb.WatchCreateRequest) *pb.WatchResponse {
	if !ws.s.node.Auth().Enabled() {
		return nil
	}
	err := ws.s.checkRange(ws.ctx, r.Key, r.RangeEnd)
	if err == nil {
		return nil
	}
	return &pb.WatchResponse{Header: ws.s.currentHeader(), WatchId: progressWatchID, Created: true, Canceled: true, CancelReason: err.Error()}
}
