package kvstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A session key: put with a lease that KeepAlive renews for as long as
// the session lives. Revoking the lease (or letting it expire once nobody
// renews it) deletes the key.
func ExampleNode_KeepAlive() {
	n := exampleNode(transport.NewNetwork(), "n1", singleMember)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// One second is this node's minimum TTL (1.5 election timeouts, at
	// least a second); a zero or lower request is raised to it.
	grant, err := n.Grant(ctx, 1)
	if err != nil {
		panic(err)
	}
	fmt.Println("granted a lease of", grant.TTL, "s")
	if _, err := n.Put(ctx, []byte("sessions/worker-1"), []byte("alive"), kvstore.WithLease(grant.ID)); err != nil {
		panic(err)
	}

	session, endSession := context.WithCancel(ctx)
	renewals, err := n.KeepAlive(session, grant.ID)
	if err != nil {
		panic(err)
	}
	// The first renewal comes at once, the next after a third of the TTL.
	for i := range 2 {
		r, ok := <-renewals
		if !ok {
			panic("KeepAlive stopped")
		}
		fmt.Printf("renewal %d: TTL %d s\n", i+1, r.TTL)
	}
	ttl, err := n.TimeToLive(ctx, grant.ID, true)
	if err != nil {
		panic(err)
	}
	fmt.Printf("lease keys: %s\n", ttl.Keys)

	endSession()
	for range renewals { // closed once KeepAlive has stopped
	}
	if _, err := n.Revoke(ctx, grant.ID); err != nil {
		panic(err)
	}
	resp, err := n.Get(ctx, []byte("sessions/"), kvstore.WithPrefix())
	if err != nil {
		panic(err)
	}
	fmt.Println("sessions after the revoke:", resp.Count)
	// Output:
	// granted a lease of 1 s
	// renewal 1: TTL 1 s
	// renewal 2: TTL 1 s
	// lease keys: [sessions/worker-1]
	// sessions after the revoke: 0
}
