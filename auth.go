package kvstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/internal/wire"
)

// Authentication, as etcd v3's: users, roles and key permissions, kept in
// the auth package's state machine. Every change goes through raft as a
// wire.CmdAuth entry, so every member holds the same auth state at the
// same log index, keeps it across restarts (the log and the FSM snapshot
// carry it) and hands it to backups.
//
// The node itself does not enforce permissions on its own calls: it is
// embedded by a program that is its own authority. A server in front of
// it (etcdapi) authenticates its clients with [Auth.Authenticate] and
// [Auth.VerifyToken] and checks each request with the Is*Permitted calls,
// against this member's applied auth state; a write checked so can carry
// the auth revision it was checked at ([WithAuthRevision]), and is then
// refused at apply, on every member alike, if auth is enabled there and
// the auth state changed since (auth.ErrAuthOldRevision), as etcd's
// apply-time check.

// DefaultAuthTokenTTL is how long a token from Authenticate is valid:
// etcd's --auth-token-ttl default.
const DefaultAuthTokenTTL = 300 * time.Second

// authConfig is the auth part of the node's configuration; the zero value
// means the defaults.
type authConfig struct {
	tokenTTL   time.Duration
	bcryptCost int
}

// WithAuthTokenTTL sets how long a token from Auth.Authenticate is valid
// (default DefaultAuthTokenTTL, as etcd's --auth-token-ttl). Each member
// verifies tokens against its own clock.
func WithAuthTokenTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("WithAuthTokenTTL", "%v", d)
		}
		c.auth.tokenTTL = d
		return nil
	}
}

// WithAuthBcryptCost sets the bcrypt cost of the password hashes this
// member makes when it proposes a user or a password (default
// bcrypt.DefaultCost, 10, as etcd's --bcrypt-cost). The cost is recorded
// in each hash, so members may differ.
func WithAuthBcryptCost(cost int) Option {
	return func(c *config) error {
		if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
			return invalid("WithAuthBcryptCost", "%d is outside [%d, %d]", cost, bcrypt.MinCost, bcrypt.MaxCost)
		}
		c.auth.bcryptCost = cost
		return nil
	}
}

func (c authConfig) ttl() time.Duration {
	if c.tokenTTL == 0 {
		return DefaultAuthTokenTTL
	}
	return c.tokenTTL
}

// nodeAuth is the node's own auth state, beside the replicated one: the
// slots that bound how many bcrypt computations (Authenticate, UserAdd,
// UserChangePassword) run at once, one per CPU, so that a flood of
// authentications cannot starve the node's other work.
type nodeAuth struct {
	once  sync.Once
	slots chan struct{}
}

func (a *nodeAuth) acquire(ctx context.Context) (release func(), err error) {
	a.once.Do(func() { a.slots = make(chan struct{}, runtime.GOMAXPROCS(0)) })
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Auth is a node's authentication API; get it with [Node.Auth]. It is
// safe for concurrent use.
//
// Changes go through raft, forwarded to the leader like a Put, and return
// once applied on this member; a change refused by the auth state returns
// the auth package's typed error (auth.ErrUserNotFound, ...) and changed
// nothing. A change proposed when ctx ends may still commit. Reads
// (Status, UserGet, UserList, RoleGet, RoleList, Authenticate) are
// linearizable: they see every change made before they were called. The
// checks and VerifyToken read this member's applied state, without a
// round through raft.
type Auth struct {
	n *Node
}

// Auth returns the node's authentication API.
func (n *Node) Auth() *Auth { return &Auth{n: n} }

type authRevisionKey struct{}

// WithAuthRevision returns a context for a write whose permissions the
// caller checked against the auth state at revision rev (Auth.Revision,
// read before the check, with auth enabled or not): a Put, Delete, Txn,
// Compact, Revoke or change of the Auth API. Proposed with it, the write
// is applied only if auth is disabled when it applies, or the auth state
// has not changed since: otherwise it fails with auth.ErrAuthOldRevision
// on every member and changes nothing, and the caller checks again. That
// is etcd's apply-time permission check; a write let through while auth
// was disabled is so refused if it applies after auth was enabled. A
// revision of 0 (a store that never changed) asks for no check.
func WithAuthRevision(ctx context.Context, rev uint64) context.Context {
	return context.WithValue(ctx, authRevisionKey{}, rev)
}

// authRevisionFor is the auth revision ctx carries for c: for a client's
// write (a put, delete, txn, compaction, lease revocation or auth change)
// only. What the node proposes on its own under a caller's context (a
// NOSPACE alarm a put raised) is not the caller's to refuse.
func authRevisionFor(ctx context.Context, c *wire.Command) uint64 {
	switch c.Kind {
	case wire.CmdPut, wire.CmdDelete, wire.CmdTxn, wire.CmdCompact, wire.CmdLeaseRevoke, wire.CmdAuth:
		rev, _ := ctx.Value(authRevisionKey{}).(uint64)
		return rev
	}
	return 0
}

// refuseStaleAuth is the apply-time check of WithAuthRevision: it
// depends on the log alone, so every member decides alike. With auth
// disabled at apply nothing is checked, so nothing is refused.
func refuseStaleAuth(s *auth.Store, c *wire.Command) error {
	if c.AuthRevision != 0 && s.Enabled() && c.AuthRevision < s.Revision() {
		return fmt.Errorf("%w: checked at %d, applied at %d", auth.ErrAuthOldRevision, c.AuthRevision, s.Revision())
	}
	return nil
}

func (a *Auth) propose(ctx context.Context, change *wire.Auth) error {
	_, err := a.n.propose(ctx, &wire.Command{Kind: wire.CmdAuth, Auth: change})
	return err
}

// Enable turns auth on. The root user must exist and hold the root role
// (auth.ErrRootUserNotExist, auth.ErrRootRoleNotExist). This member draws
// the secret every member then signs and verifies tokens with; enabling
// an enabled cluster keeps its secret.
func (a *Auth) Enable(ctx context.Context) error {
	secret := make([]byte, auth.MinSecretLen)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("kvstore: auth secret: %w", err)
	}
	return a.propose(ctx, &wire.Auth{Op: wire.AuthEnable, Secret: secret})
}

// Disable turns auth off; every token becomes invalid.
func (a *Auth) Disable(ctx context.Context) error {
	return a.propose(ctx, &wire.Auth{Op: wire.AuthDisable})
}

// Status returns whether auth is enabled and the auth revision.
func (a *Auth) Status(ctx context.Context) (auth.Status, error) {
	if err := a.n.readIndex(ctx); err != nil {
		return auth.Status{}, err
	}
	return a.n.fsm.auth.Status(), nil
}

// UserAdd adds a user with a password, hashed here with bcrypt (as etcd,
// an empty password is a password). An empty name is auth.ErrUserEmpty, a
// taken one auth.ErrUserAlreadyExist.
func (a *Auth) UserAdd(ctx context.Context, name, password string) error {
	if name == "" {
		return auth.ErrUserEmpty
	}
	hash, err := a.hash(ctx, password)
	if err != nil {
		return err
	}
	return a.propose(ctx, &wire.Auth{Op: wire.AuthUserAdd, User: name, Hash: hash})
}

// UserAddNoPassword adds a user without a password, as etcd's
// --no-password: it cannot Authenticate, only be named by a client
// certificate.
func (a *Auth) UserAddNoPassword(ctx context.Context, name string) error {
	if name == "" {
		return auth.ErrUserEmpty
	}
	return a.propose(ctx, &wire.Auth{Op: wire.AuthUserAdd, User: name, NoPassword: true})
}

// UserDelete deletes a user (not the root user while auth is enabled).
func (a *Auth) UserDelete(ctx context.Context, name string) error {
	return a.propose(ctx, &wire.Auth{Op: wire.AuthUserDelete, User: name})
}

// UserChangePassword sets a user's password; the user's tokens issued
// before become invalid.
func (a *Auth) UserChangePassword(ctx context.Context, name, password string) error {
	hash, err := a.hash(ctx, password)
	if err != nil {
		return err
	}
	return a.propose(ctx, &wire.Auth{Op: wire.AuthUserChangePassword, User: name, Hash: hash})
}

func (a *Auth) hash(ctx context.Context, password string) ([]byte, error) {
	release, err := a.n.auth.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	hash, err := auth.HashPassword(password, a.n.cfg.auth.bcryptCost)
	if err != nil {
		return nil, fmt.Errorf("kvstore: hashing the password: %w", err)
	}
	return hash, nil
}

// UserGrantRole grants a role to a user.
func (a *Auth) UserGrantRole(ctx context.Context, user, role string) error {
	return a.propose(ctx, &wire.Auth{Op: wire.AuthUserGrantRole, User: user, Role: role})
}

// UserRevokeRole revokes a role from a user.
func (a *Auth) UserRevokeRole(ctx context.Context, user, role string) error {
	return a.propose(ctx, &wire.Auth{Op: wire.AuthUserRevokeRole, User: user, Role: role})
}

// UserGet returns a user and its roles.
func (a *Auth) UserGet(ctx context.Context, name string) (auth.User, error) {
	if err := a.n.readIndex(ctx); err != nil {
		return auth.User{}, err
	}
	return a.n.fsm.auth.UserGet(name)
}

// UserList returns the users' names in order.
func (a *Auth) UserList(ctx context.Context) ([]string, error) {
	if err := a.n.readIndex(ctx); err != nil {
		return nil, err
	}
	return a.n.fsm.auth.UserList(), nil
}

// RoleAdd adds a role without permissions.
func (a *Auth) RoleAdd(ctx context.Context, name string) error {
	if name == "" {
		return auth.ErrRoleEmpty
	}
	return a.propose(ctx, &wire.Auth{Op: wire.AuthRoleAdd, Role: name})
}

// RoleDelete deletes a role (not the root role while auth is enabled) and
// takes it from its users.
func (a *Auth) RoleDelete(ctx context.Context, name string) error {
	return a.propose(ctx, &wire.Auth{Op: wire.AuthRoleDelete, Role: name})
}

// RoleGrantPermission grants p to a role, replacing the type of a
// permission over the same range.
func (a *Auth) RoleGrantPermission(ctx context.Context, role string, p auth.Permission) error {
	return a.propose(ctx, &wire.Auth{Op: wire.AuthRoleGrantPermission, Role: role, PermType: uint8(p.Type), Key: p.Key, End: p.End})
}

// RoleRevokePermission revokes a role's permission over exactly key and
// end.
func (a *Auth) RoleRevokePermission(ctx context.Context, role string, key, end []byte) error {
	return a.propose(ctx, &wire.Auth{Op: wire.AuthRoleRevokePermission, Role: role, Key: key, End: end})
}

// RoleGet returns a role and its permissions.
func (a *Auth) RoleGet(ctx context.Context, name string) (auth.Role, error) {
	if err := a.n.readIndex(ctx); err != nil {
		return auth.Role{}, err
	}
	return a.n.fsm.auth.RoleGet(name)
}

// RoleList returns the roles' names in order.
func (a *Auth) RoleList(ctx context.Context) ([]string, error) {
	if err := a.n.readIndex(ctx); err != nil {
		return nil, err
	}
	return a.n.fsm.auth.RoleList(), nil
}

// Authenticate checks a user's password against the auth state as of the
// call (a linearizable read) and returns a token, valid for
// WithAuthTokenTTL on every member. A wrong user or password is
// auth.ErrAuthFailed, auth disabled auth.ErrAuthNotEnabled. At most one
// bcrypt comparison per CPU runs at once; the others wait, until ctx ends.
func (a *Auth) Authenticate(ctx context.Context, name, password string) (string, error) {
	if err := a.n.readIndex(ctx); err != nil {
		return "", err
	}
	release, err := a.n.auth.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return a.n.fsm.auth.Authenticate(name, password, time.Now(), a.n.cfg.auth.ttl())
}

// VerifyToken returns the user a token from Authenticate (on any member)
// was issued to, or auth.ErrInvalidAuthToken: forged, expired by this
// member's clock, of a user deleted or whose password changed since, or
// auth disabled. It reads this member's applied state.
func (a *Auth) VerifyToken(token string) (string, error) {
	return a.n.fsm.auth.VerifyToken(token, time.Now())
}

// Sync returns once this member has applied every auth change committed
// before the call (one read-index round), so that the checks after it
// judge by the auth state as of the call, as etcd judges a linearizable
// read.
func (a *Auth) Sync(ctx context.Context) error { return a.n.readIndex(ctx) }

// Enabled reports whether auth is enabled in this member's applied state.
func (a *Auth) Enabled() bool { return a.n.fsm.auth.Enabled() }

// Revision returns the auth revision of this member's applied state.
func (a *Auth) Revision() uint64 { return a.n.fsm.auth.Revision() }

// IsRangePermitted checks, against this member's applied state, that user
// may read [key, end) (etcd's range encoding). With auth disabled every
// check passes.
func (a *Auth) IsRangePermitted(user string, key, end []byte) error {
	return a.n.fsm.auth.IsRangePermitted(user, key, end)
}

// IsPutPermitted checks that user may write key.
func (a *Auth) IsPutPermitted(user string, key []byte) error {
	return a.n.fsm.auth.IsPutPermitted(user, key)
}

// IsDeleteRangePermitted checks that user may write [key, end).
func (a *Auth) IsDeleteRangePermitted(user string, key, end []byte) error {
	return a.n.fsm.auth.IsDeleteRangePermitted(user, key, end)
}

// IsAdminPermitted checks that user holds the root role.
func (a *Auth) IsAdminPermitted(user string) error {
	return a.n.fsm.auth.IsAdminPermitted(user)
}

// applyAuth applies a CmdAuth entry to s. Its error is a value, the same
// on every member.
func applyAuth(s *auth.Store, c *wire.Auth) error {
	switch c.Op {
	case wire.AuthEnable:
		return s.Enable(c.Secret)
	case wire.AuthDisable:
		s.Disable()
		return nil
	case wire.AuthUserAdd:
		return s.UserAdd(c.User, c.Hash, c.NoPassword)
	case wire.AuthUserDelete:
		return s.UserDelete(c.User)
	case wire.AuthUserChangePassword:
		return s.UserChangePassword(c.User, c.Hash)
	case wire.AuthUserGrantRole:
		return s.UserGrantRole(c.User, c.Role)
	case wire.AuthUserRevokeRole:
		return s.UserRevokeRole(c.User, c.Role)
	case wire.AuthRoleAdd:
		return s.RoleAdd(c.Role)
	case wire.AuthRoleDelete:
		return s.RoleDelete(c.Role)
	case wire.AuthRoleGrantPermission:
		return s.RoleGrantPermission(c.Role, auth.Permission{Type: auth.PermType(c.PermType), Key: c.Key, End: c.End})
	case wire.AuthRoleRevokePermission:
		return s.RoleRevokePermission(c.Role, c.Key, c.End)
	}
	return fmt.Errorf("%w: unknown auth op %d", wire.ErrBadCommand, c.Op)
}
