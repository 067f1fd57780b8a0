package kvstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A member publishes its name and client URLs through raft after it
// starts; every member's Members then lists them.
func ExampleWithMemberName() {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		panic(err)
	}
	n, err := kvstore.Open("",
		kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
		kvstore.WithBootstrap(singleMember),
		kvstore.WithMemberName("infra1"), kvstore.WithClientURLs("http://10.0.0.1:2379"))
	if err != nil {
		tr.Close()
		panic(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		members, err := n.Members(ctx)
		if err != nil {
			panic(err)
		}
		if m := members[0]; m.Name != "" {
			fmt.Printf("%s: name %s, client URLs %v\n", m.ID, m.Name, m.ClientURLs)
			break
		}
		time.Sleep(10 * time.Millisecond) // published once the node leads
	}
	// Output:
	// n1: name infra1, client URLs [http://10.0.0.1:2379]
}
