// Package auth is the replicated state machine of kvstore's etcd-v3-style
// authentication: whether auth is enabled, the auth revision, users (a
// bcrypt hash of each password, or none for a no-password user), their
// roles, and the roles' key permissions.
//
// # Basics
//
// A [Store] holds that state. Its changes (UserAdd, RoleGrantPermission,
// Enable, ...) are deterministic: fed the same calls, two stores reach the
// same state, answer the same errors and write the same snapshot bytes.
// Nothing in a change reads a clock or a random source: a password arrives
// already hashed ([HashPassword] runs on the member that proposes the
// change) and the token secret arrives with Enable. Every successful
// change advances the auth revision by one; a refused change (a typed
// error, matched with errors.Is) changes nothing.
//
// The rules are etcd's: Enable needs a user named "root" that holds the
// role "root"; the root role grants every permission and the admin calls,
// whatever permissions it lists; while auth is enabled the root user
// cannot be deleted and cannot lose the root role, and the root role
// cannot be deleted. While auth is disabled every check passes.
//
// # Permissions
//
// A permission is a key range with etcd's encoding: an empty End is the
// single key Key, End "\x00" is every key from Key on, any other End is
// [Key, End). READWRITE satisfies both READ and WRITE. A check over a range
// passes when the union of the user's permissions of that type covers the
// whole range, as etcd's interval tree check.
//
// # Tokens
//
// [Store.IssueToken] signs a token with HMAC-SHA256 under the cluster
// secret that Enable installed: the user, the user's token generation
// (the auth revision of its creation or of its last password change) and
// an expiry. Any member holding the same state verifies it
// ([Store.VerifyToken]) without a round through raft. A token whose
// signature, expiry, user or generation does not match is
// ErrInvalidAuthToken; disabling auth and enabling it again installs a new
// secret, which invalidates every token.
//
// # Caveats
//
// A Store is safe for concurrent use: changes take its write lock, reads
// and checks its read lock. The caller serializes changes in log order.
package auth
