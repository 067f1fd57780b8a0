package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/transport"
)

// A server in front of a node authenticates its clients with the node's
// Auth API and checks each request against the users' permissions.
func ExampleNode_Auth() {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		panic(err)
	}
	n, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstore.WithBootstrap(singleMember),
		kvstore.WithRaftTiming(50*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond),
		kvstore.WithAuthBcryptCost(4))
	if err != nil {
		panic(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	a := n.Auth()
	fmt.Println("enable without root:", a.Enable(ctx))
	for _, err := range []error{
		a.UserAdd(ctx, auth.RootUser, "rootpw"),
		a.UserGrantRole(ctx, auth.RootUser, auth.RootRole),
		a.UserAdd(ctx, "alice", "alicepw"),
		a.RoleAdd(ctx, "app-reader"),
		a.RoleGrantPermission(ctx, "app-reader", auth.Permission{Type: auth.Read, Key: []byte("app/"), End: []byte("app0")}),
		a.UserGrantRole(ctx, "alice", "app-reader"),
		a.Enable(ctx),
	} {
		if err != nil {
			panic(err)
		}
	}

	_, err = a.Authenticate(ctx, "alice", "wrong")
	fmt.Println("wrong password:", errors.Is(err, auth.ErrAuthFailed))
	token, err := a.Authenticate(ctx, "alice", "alicepw")
	if err != nil {
		panic(err)
	}
	user, err := a.VerifyToken(token)
	fmt.Println("token of:", user, err)
	fmt.Println("read app/config:", a.IsRangePermitted(user, []byte("app/config"), nil))
	fmt.Println("read secrets/:", a.IsRangePermitted(user, []byte("secrets/"), []byte("secrets0")))
	fmt.Println("write app/config:", a.IsPutPermitted(user, []byte("app/config")))
	// Output:
	// enable without root: auth: root user does not exist
	// wrong password: true
	// token of: alice <nil>
	// read app/config: <nil>
	// read secrets/: auth: permission denied
	// write app/config: auth: permission denied
}
