package kvstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// exampleNode opens the member addr (its ID too) on network, with its
// state in memory and raft timings short enough for an example (a
// deployment keeps raft's defaults). With bootstrap peers it founds a new
// cluster of them; without, it waits to be added ([kvstore.Node.Join]).
// It panics on errors, as examples may.
func exampleNode(network *transport.Network, addr string, bootstrap ...kvstore.Peer) *kvstore.Node {
	tr, err := network.Join(addr)
	if err != nil {
		panic(err)
	}
	opts := []kvstore.Option{
		kvstore.WithID(addr),
		kvstore.WithTransport(tr),
		kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
		kvstore.WithRaftTiming(50*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond),
	}
	if len(bootstrap) > 0 {
		opts = append(opts, kvstore.WithBootstrap(bootstrap...))
	}
	n, err := kvstore.Open("", opts...)
	if err != nil {
		tr.Close()
		panic(err)
	}
	return n
}

// singleMember is the one member of the examples' single-node clusters.
var singleMember = kvstore.Peer{ID: "n1", Address: "n1"}

// A put answers with the revision it created; WithPrevKV also returns the
// key as it was.
func ExampleNode_Put() {
	n := exampleNode(transport.NewNetwork(), "n1", singleMember)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := n.Put(ctx, []byte("greeting"), []byte("hello"))
	if err != nil {
		panic(err)
	}
	fmt.Println("put at revision", resp.Header.Revision)
	resp, err = n.Put(ctx, []byte("greeting"), []byte("hello, world"), kvstore.WithPrevKV())
	if err != nil {
		panic(err)
	}
	fmt.Printf("put at revision %d, replacing %q (version %d)\n", resp.Header.Revision, resp.PrevKV.Value, resp.PrevKV.Version)
	// Output:
	// put at revision 2
	// put at revision 3, replacing "hello" (version 1)
}

// A Get reads one key or a range; with WithRev it reads the store as it
// was at a past revision.
func ExampleNode_Get() {
	n := exampleNode(transport.NewNetwork(), "n1", singleMember)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, kv := range [][2]string{{"fruit/apple", "red"}, {"fruit/banana", "yellow"}, {"fruit/cherry", "red"}, {"veg/leek", "green"}} {
		if _, err := n.Put(ctx, []byte(kv[0]), []byte(kv[1])); err != nil {
			panic(err)
		}
	}
	if _, err := n.Put(ctx, []byte("fruit/apple"), []byte("green")); err != nil {
		panic(err)
	}

	// Every fruit, last key first, two at most.
	resp, err := n.Get(ctx, []byte("fruit/"), kvstore.WithPrefix(),
		kvstore.WithSort(kvstore.SortByKey, kvstore.SortDescend), kvstore.WithLimit(2))
	if err != nil {
		panic(err)
	}
	for _, kv := range resp.KVs {
		fmt.Printf("%s = %s\n", kv.Key, kv.Value)
	}
	fmt.Printf("%d of %d fruits, more: %v\n", len(resp.KVs), resp.Count, resp.More)

	// The apple as it was before the last put (revision 6).
	old, err := n.Get(ctx, []byte("fruit/apple"), kvstore.WithRev(5))
	if err != nil {
		panic(err)
	}
	fmt.Printf("at revision 5 the apple was %s; the store is at revision %d\n", old.KVs[0].Value, old.Header.Revision)
	// Output:
	// fruit/cherry = red
	// fruit/banana = yellow
	// 2 of 3 fruits, more: true
	// at revision 5 the apple was red; the store is at revision 6
}
