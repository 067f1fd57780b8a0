package kvstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A watch on a prefix delivers every change under it, in revision order;
// a delete carries the key as it was with WithPrevKV. Cancelling the
// watch's context ends it.
func ExampleNode_Watch() {
	n := exampleNode(transport.NewNetwork(), "n1", singleMember)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	watchCtx, stop := context.WithCancel(ctx)
	changes, err := n.Watch(watchCtx, []byte("jobs/"), kvstore.WithPrefix(), kvstore.WithPrevKV())
	if err != nil {
		panic(err)
	}
	if _, err := n.Put(ctx, []byte("jobs/1"), []byte("queued")); err != nil {
		panic(err)
	}
	if _, err := n.Put(ctx, []byte("other"), []byte("not watched")); err != nil {
		panic(err)
	}
	if _, err := n.Put(ctx, []byte("jobs/1"), []byte("running")); err != nil {
		panic(err)
	}
	if _, err := n.Delete(ctx, []byte("jobs/1")); err != nil {
		panic(err)
	}
	for seen := 0; seen < 3; {
		resp, ok := <-changes
		if !ok {
			panic("the watch ended early")
		}
		for _, ev := range resp.Events {
			switch ev.Type {
			case kvstore.EventPut:
				fmt.Printf("rev %d: %s = %s\n", ev.KV.ModRevision, ev.KV.Key, ev.KV.Value)
			case kvstore.EventDelete:
				fmt.Printf("rev %d: %s deleted (was %s)\n", ev.KV.ModRevision, ev.KV.Key, ev.PrevKV.Value)
			}
			seen++
		}
	}
	stop()
	for range changes { // the channel closes once the watch has ended
	}
	fmt.Println("watch ended")
	// Output:
	// rev 2: jobs/1 = queued
	// rev 4: jobs/1 = running
	// rev 5: jobs/1 deleted (was running)
	// watch ended
}

// A watch WithRev replays the history from that revision first, so a
// client that saw revision r resumes from r+1 and misses nothing.
func ExampleNode_Watch_resume() {
	n := exampleNode(transport.NewNetwork(), "n1", singleMember)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var seenRev int64 // the last revision the client saw
	for _, v := range []string{"a", "b", "c"} {
		resp, err := n.Put(ctx, []byte("counter"), []byte(v))
		if err != nil {
			panic(err)
		}
		if v == "a" {
			seenRev = resp.Header.Revision
			fmt.Println("the client saw revision", seenRev)
		}
	}
	changes, err := n.Watch(ctx, []byte("counter"), kvstore.WithRev(seenRev+1))
	if err != nil {
		panic(err)
	}
	for seen := 0; seen < 2; {
		resp, ok := <-changes
		if !ok {
			panic("the watch ended early")
		}
		for _, ev := range resp.Events {
			fmt.Printf("replayed rev %d: %s\n", ev.KV.ModRevision, ev.KV.Value)
			seen++
		}
	}
	// Output:
	// the client saw revision 2
	// replayed rev 3: b
	// replayed rev 4: c
}
