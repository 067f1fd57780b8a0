package kvstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvstore/kvstore/transport"
)

// A new node joins a running cluster through any member: it is added as a
// learner, catches up, and is promoted to voter. Then it serves like every
// member: its writes are forwarded to the leader.
func ExampleNode_Join() {
	network := transport.NewNetwork()
	first := exampleNode(network, "n1", singleMember)
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := first.Put(ctx, []byte("before"), []byte("n2 joined")); err != nil {
		panic(err)
	}

	second := exampleNode(network, "n2") // no bootstrap: it waits to be added
	defer second.Close()
	if err := second.Join(ctx, []string{"n1"}); err != nil {
		panic(err)
	}
	members, err := second.Members(ctx)
	if err != nil {
		panic(err)
	}
	for _, m := range members {
		fmt.Printf("%s at %s, learner: %v\n", m.ID, m.Address, m.Learner)
	}
	if _, err := second.Put(ctx, []byte("after"), []byte("through n2")); err != nil {
		panic(err)
	}
	resp, err := first.Get(ctx, []byte("after"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("n1 reads %s\n", resp.KVs[0].Value)
	// Output:
	// n1 at n1, learner: false
	// n2 at n2, learner: false
	// n1 reads through n2
}

// A host service that must run on one machine at a time can follow the
// cluster's leadership: it runs while the latest view from ObserveLeader
// has IsLeader, and stops when a view without it arrives or when the
// channel closes (ctx ended, or the node closed). Views are coalesced, so a
// slow receiver gets the latest one next.
func ExampleNode_ObserveLeader() {
	n := exampleNode(transport.NewNetwork(), "n1", singleMember)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	views := n.ObserveLeader(ctx)
	running := false
	for info := range views {
		switch {
		case info.IsLeader && !running:
			fmt.Printf("%s leads in term %d: start the service\n", info.LeaderID, info.Term)
			running = true
			n.Close() // for the example: this member goes away
		case !info.IsLeader && running:
			fmt.Println("leadership lost: stop the service")
			running = false
		}
	}
	if running {
		fmt.Println("the node closed: stop the service")
	}
	// Output:
	// n1 leads in term 2: start the service
	// the node closed: stop the service
}
