package watch_test

import (
	"context"
	"fmt"

	"github.com/kvstore/kvstore/mvcc"
	"github.com/kvstore/kvstore/watch"
)

// The state machine applies writes to the store and hands their events to
// the hub; a watch on a prefix receives them, with the previous value when
// asked for.
func Example() {
	store := mvcc.New(mvcc.Config{})
	defer store.Close()
	hub := watch.NewHub(store, watch.Config{})
	defer hub.Close()

	// What the state machine does after applying each write.
	put := func(key, value string) {
		res, events, err := store.Put(&mvcc.PutRequest{Key: []byte(key), Value: []byte(value)})
		if err != nil {
			panic(err)
		}
		hub.Notify(res.Revision, events)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := hub.Watch(ctx, watch.Request{
		Key:    []byte("config/"),
		End:    mvcc.PrefixEnd([]byte("config/")),
		PrevKV: true,
	})
	if err != nil {
		panic(err)
	}
	put("config/a", "1")
	put("other", "x")
	put("config/a", "2")
	for range 2 {
		resp := <-ch
		for _, ev := range resp.Events {
			prev := "none"
			if ev.PrevKV != nil {
				prev = string(ev.PrevKV.Value)
			}
			fmt.Printf("rev %d: %s %s=%s (prev %s)\n", resp.Revision, ev.Type, ev.KV.Key, ev.KV.Value, prev)
		}
	}
	// Output:
	// rev 2: PUT config/a=1 (prev none)
	// rev 4: PUT config/a=2 (prev 1)
}
