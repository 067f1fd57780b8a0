package auth

import "errors"

// Errors of the auth state, etcd's auth errors one for one (the etcdapi
// package answers each with etcd's gRPC error). Match them with errors.Is.
var (
	// ErrRootUserNotExist: Enable without a user named "root".
	ErrRootUserNotExist = errors.New("auth: root user does not exist")
	// ErrRootRoleNotExist: Enable while the root user lacks the root role.
	ErrRootRoleNotExist = errors.New("auth: root user does not have root role")
	// ErrUserAlreadyExist: UserAdd of a name already taken.
	ErrUserAlreadyExist = errors.New("auth: user name already exists")
	// ErrUserEmpty: a user name that is empty, or a check made for no user
	// while auth is enabled.
	ErrUserEmpty = errors.New("auth: user name is empty")
	// ErrUserNotFound: a change or read naming an unknown user.
	ErrUserNotFound = errors.New("auth: user name not found")
	// ErrRoleAlreadyExist: RoleAdd of a name already taken.
	ErrRoleAlreadyExist = errors.New("auth: role name already exists")
	// ErrRoleNotFound: a change or read naming an unknown role.
	ErrRoleNotFound = errors.New("auth: role name not found")
	// ErrRoleEmpty: a role name that is empty.
	ErrRoleEmpty = errors.New("auth: role name is empty")
	// ErrAuthFailed: Authenticate with an unknown user or a wrong
	// password, or for a no-password user.
	ErrAuthFailed = errors.New("auth: authentication failed, invalid user ID or password")
	// ErrPermissionDenied: the user's roles do not grant the request.
	ErrPermissionDenied = errors.New("auth: permission denied")
	// ErrRoleNotGranted: UserRevokeRole of a role the user does not hold.
	ErrRoleNotGranted = errors.New("auth: role is not granted to the user")
	// ErrPermissionNotGranted: RoleRevokePermission of a permission the
	// role does not hold.
	ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")
	// ErrInvalidPermission: a permission of an unknown type.
	ErrInvalidPermission = errors.New("auth: invalid permission type")
	// ErrAuthNotEnabled: Authenticate while auth is disabled.
	ErrAuthNotEnabled = errors.New("auth: authentication is not enabled")
	// ErrInvalidAuthToken: a token that is malformed, forged, expired, of a
	// deleted user, issued before the user's password changed, or issued
	// under another secret.
	ErrInvalidAuthToken = errors.New("auth: invalid auth token")
	// ErrInvalidAuthMgmt: deleting the root user or role, or revoking the
	// root role from the root user, while auth is enabled.
	ErrInvalidAuthMgmt = errors.New("auth: invalid auth management")
	// ErrAuthOldRevision: a write checked against an auth revision older
	// than the one it is applied at.
	ErrAuthOldRevision = errors.New("auth: revision of auth store is old")
	// ErrCorruptSnapshot: a snapshot ReadFrom cannot read.
	ErrCorruptSnapshot = errors.New("auth: corrupt snapshot")
)
