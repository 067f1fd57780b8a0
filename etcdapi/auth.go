package etcdapi

import (
	"context"
	"errors"

	"github.com/kvstore/kvstore/auth"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// authService serves etcd's Auth service from the node's Auth API: every
// change goes through raft, every read is linearizable. Who may call what
// is checked before the handler runs (authcheck.go).
type authService struct {
	pb.UnimplementedAuthServer
	s *Server
}

func (a *authService) AuthEnable(ctx context.Context, _ *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	if err := a.s.node.Auth().Enable(ctx); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthEnableResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) AuthDisable(ctx context.Context, _ *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	if err := a.s.node.Auth().Disable(ctx); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthDisableResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	st, err := a.s.node.Auth().Status(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthStatusResponse{Header: a.s.currentHeader(), Enabled: st.Enabled, AuthRevision: st.Revision}, nil
}

func (a *authService) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	token, err := a.s.node.Auth().Authenticate(ctx, r.Name, r.Password)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthenticateResponse{Header: a.s.currentHeader(), Token: token}, nil
}

// UserAdd adds a user with the request's password, or none with the
// no-password option. etcd's own members fill HashedPassword; a client
// sends the password, which the node hashes.
func (a *authService) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	var err error
	if r.Options != nil && r.Options.NoPassword {
		err = a.s.node.Auth().UserAddNoPassword(ctx, r.Name)
	} else {
		err = a.s.node.Auth().UserAdd(ctx, r.Name, r.Password)
	}
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserAddResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	u, err := a.s.node.Auth().UserGet(ctx, r.Name)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserGetResponse{Header: a.s.currentHeader(), Roles: u.Roles}, nil
}

func (a *authService) UserList(ctx context.Context, _ *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	users, err := a.s.node.Auth().UserList(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserListResponse{Header: a.s.currentHeader(), Users: users}, nil
}

func (a *authService) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	if err := a.s.node.Auth().UserDelete(ctx, r.Name); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserDeleteResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	if err := a.s.node.Auth().UserChangePassword(ctx, r.Name, r.Password); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserChangePasswordResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	if err := a.s.node.Auth().UserGrantRole(ctx, r.User, r.Role); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserGrantRoleResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	if err := a.s.node.Auth().UserRevokeRole(ctx, r.Name, r.Role); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserRevokeRoleResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	if err := a.s.node.Auth().RoleAdd(ctx, r.Name); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleAddResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	role, err := a.s.node.Auth().RoleGet(ctx, r.Role)
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &pb.AuthRoleGetResponse{Header: a.s.currentHeader()}
	for _, p := range role.Permissions {
		resp.Perm = append(resp.Perm, &authpb.Permission{PermType: authpb.Permission_Type(p.Type), Key: p.Key, RangeEnd: p.End})
	}
	return resp, nil
}

func (a *authService) RoleList(ctx context.Context, _ *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	roles, err := a.s.node.Auth().RoleList(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleListResponse{Header: a.s.currentHeader(), Roles: roles}, nil
}

func (a *authService) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	if err := a.s.node.Auth().RoleDelete(ctx, r.Role); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleDeleteResponse{Header: a.s.currentHeader()}, nil
}

// RoleGrantPermission grants the request's permission: its type has
// authpb's numbering, which the auth package shares; a request without one
// is ErrGRPCPermissionNotGiven, as etcd's.
func (a *authService) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	if r.Perm == nil {
		return nil, rpctypes.ErrGRPCPermissionNotGiven
	}
	if r.Perm.PermType < 0 || r.Perm.PermType > authpb.READWRITE {
		return nil, rpctypes.ErrGRPCPermissionNotGiven
	}
	p := auth.Permission{Type: auth.PermType(r.Perm.PermType), Key: r.Perm.Key, End: r.Perm.RangeEnd}
	if err := a.s.node.Auth().RoleGrantPermission(ctx, r.Name, p); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleGrantPermissionResponse{Header: a.s.currentHeader()}, nil
}

func (a *authService) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	if err := a.s.node.Auth().RoleRevokePermission(ctx, r.Role, r.Key, r.RangeEnd); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleRevokePermissionResponse{Header: a.s.currentHeader()}, nil
}

// authErrors pairs the auth package's errors with etcd's gRPC errors.
var authErrors = []struct {
	kv   error
	grpc error
}{
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrInvalidPermission, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
}

// authToGRPC is the gRPC error etcd answers for an auth error; nil for
// another error.
func authToGRPC(err error) error {
	for _, m := range authErrors {
		if errors.Is(err, m.kv) {
			return m.grpc
		}
	}
	return nil
}
