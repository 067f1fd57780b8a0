package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// Auto-compaction is on by default (periodic, 5 minutes of history). Here
// a node keeps one second of history: the leader compacts once a second
// has been sampled, and the old revisions are gone on every member. Use
// WithAutoCompaction(AutoCompactionRevision, n) to keep the latest n
// revisions instead, or WithAutoCompaction(AutoCompactionOff, 0) to keep
// everything until Compact.
func Example_autoCompaction() {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		panic(err)
	}
	n, err := kvstore.Open("",
		kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
		kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}),
		kvstore.WithAutoCompaction(kvstore.AutoCompactionPeriodic, time.Second))
	if err != nil {
		tr.Close()
		panic(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := n.Put(ctx, []byte("config"), []byte("v1"))
	if err != nil {
		panic(err)
	}
	if _, err := n.Put(ctx, []byte("config"), []byte("v2")); err != nil {
		panic(err)
	}
	for n.Status().CompactRevision < first.Header.Revision {
		select {
		case <-ctx.Done():
			panic("no auto-compaction in 10 seconds")
		case <-time.After(50 * time.Millisecond):
		}
	}
	_, err = n.Get(ctx, []byte("config"), kvstore.WithRev(first.Header.Revision-1))
	fmt.Println("before the first put:", errors.Is(err, kvstore.ErrCompacted))
	resp, err := n.Get(ctx, []byte("config"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("latest: %s\n", resp.KVs[0].Value)
	// Output:
	// before the first put: true
	// latest: v2
}
