package mvcc_test

import (
	"fmt"

	"github.com/kvstore/kvstore/mvcc"
)

// A compare-and-swap with a Txn, then a read of the previous revision.
func Example() {
	s := mvcc.New(mvcc.Config{})
	defer s.Close()

	s.Put(&mvcc.PutRequest{Key: []byte("config/mode"), Value: []byte("blue")})

	res, events, err := s.Txn(&mvcc.TxnRequest{
		Compares: []mvcc.Compare{{Key: []byte("config/mode"), Target: mvcc.CompareValue, Result: mvcc.CompareEqual, Value: []byte("blue")}},
		Then:     []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("config/mode"), Value: []byte("green")}}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("swapped:", res.Succeeded, "at revision", res.Revision)
	fmt.Printf("event: %s %s=%s (was %s)\n", events[0].Type, events[0].KV.Key, events[0].KV.Value, events[0].PrevKV.Value)

	old, _ := s.Range(&mvcc.RangeRequest{Key: []byte("config/"), End: mvcc.PrefixEnd([]byte("config/")), Revision: res.Revision - 1})
	fmt.Printf("at revision %d: %s\n", res.Revision-1, old.KVs[0].Value)
	// Output:
	// swapped: true at revision 3
	// event: PUT config/mode=green (was blue)
	// at revision 2: blue
}
