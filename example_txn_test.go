package kvstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A compare-and-swap on a single node with in-memory storage: the swap
// succeeds once, then finds the value changed and reads it instead.
func ExampleNode_Txn() {
	n := exampleNode(transport.NewNetwork(), "n1", singleMember)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	key := []byte("config/mode")
	if _, err := n.Put(ctx, key, []byte("blue")); err != nil {
		panic(err)
	}
	swap := func(from, to string) {
		resp, err := n.Txn(ctx).
			If(kvstore.Compare(kvstore.Value(key), "=", from)).
			Then(kvstore.OpPut(key, []byte(to))).
			Else(kvstore.OpGet(key)).
			Commit()
		if err != nil {
			panic(err)
		}
		if resp.Succeeded {
			fmt.Printf("swapped %s -> %s at revision %d\n", from, to, resp.Header.Revision)
			return
		}
		fmt.Printf("not swapped: %s is %s\n", key, resp.Responses[0].Get.KVs[0].Value)
	}
	swap("blue", "green")
	swap("blue", "red")
	// Output:
	// swapped blue -> green at revision 3
	// not swapped: config/mode is green
}
