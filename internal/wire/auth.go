package wire

// AuthOp says which auth change an Auth command makes, and which of its
// fields it uses. The numbers are on disk: never reuse one.
type AuthOp uint8

const (
	AuthEnable               AuthOp = iota + 1 // Secret
	AuthDisable                                // nothing
	AuthUserAdd                                // User, Hash, NoPassword
	AuthUserDelete                             // User
	AuthUserChangePassword                     // User, Hash
	AuthUserGrantRole                          // User, Role
	AuthUserRevokeRole                         // User, Role
	AuthRoleAdd                                // Role
	AuthRoleDelete                             // Role
	AuthRoleGrantPermission                    // Role, PermType, Key, End
	AuthRoleRevokePermission                   // Role, Key, End
)

// Auth is one change of the auth state (package auth). Whatever costs
// time or needs randomness was done by the proposer: Hash is the bcrypt
// hash of the password, Secret the token secret Enable installs.
type Auth struct {
	Op         AuthOp `codec:"o"`
	User       string `codec:"u,omitempty"`
	Role       string `codec:"r,omitempty"`
	Hash       []byte `codec:"h,omitempty"`
	NoPassword bool   `codec:"np,omitempty"`
	PermType   uint8  `codec:"pt,omitempty"`
	Key        []byte `codec:"k,omitempty"`
	End        []byte `codec:"e,omitempty"`
	Secret     []byte `codec:"s,omitempty"`
}
