package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// With a slow disk on every member, a write waits for the leader's append
// and a follower's side by side, not one after the other: the leader sends
// its new entries as its own append starts (eagerappend.go). In virtual
// time only the disks take time, so a write takes one disk latency and a
// little (nothing else sleeps), where it took two.
func TestEagerAppendOverlapsLeaderAndFollowerDisks(t *testing.T) {
	const latency = 10 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		c.WaitApplied()
		for i := range len(c.Nodes()) {
			c.SetDiskLatency(i, latency)
		}
		for i := range 5 {
			began := time.Now()
			put, err := leader.Put(ctx, []byte("k"), []byte(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(began); took >= 2*latency {
				t.Fatalf("put %d at revision %d took %v: the leader's and a follower's appends ran in series (each takes %v)", i, put.Header.Revision, took, latency)
			}
		}
		// Through a follower: forwarded, the same.
		f := c.Followers()[0]
		began := time.Now()
		if _, err := f.Put(ctx, []byte("k"), []byte("via follower")); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took >= 2*latency {
			t.Fatalf("put through a follower took %v, want under %v", took, 2*latency)
		}
	})
}

// WithEagerAppend(false) puts the two appends back in series.
func TestEagerAppendOff(t *testing.T) {
	const latency = 10 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithEagerAppend(false)))
		leader := c.WaitLeader()
		c.WaitApplied()
		for i := range len(c.Nodes()) {
			c.SetDiskLatency(i, latency)
		}
		began := time.Now()
		if _, err := leader.Put(context.Background(), []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took < 2*latency {
			t.Fatalf("put took %v with eager append off, want the two appends in series (%v)", took, 2*latency)
		}
	})
}

// Writes keep their guarantees while followers take entries before the
// leader has them: under a slow leader disk, a member cut off and healed,
// and leadership moving, every acknowledged write is on every member and
// the members' stores agree (kvtest's cleanup compares them).
func TestEagerAppendUnderFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		leader := c.WaitLeader()
		li := c.Index(leader)
		c.SetDiskLatency(li, 5*time.Millisecond)
		acked := map[string]string{}
		put := func(n *kvstore.Node, k, v string) {
			t.Helper()
			if _, err := n.Put(ctx, []byte(k), []byte(v)); err != nil {
				if errors.Is(err, kvstore.ErrOutcomeUnknown) || errors.Is(err, kvstore.ErrNotLeader) {
					return
				}
				t.Fatalf("put %s: %v", k, err)
			}
			acked[k] = v
		}
		for i := range 20 {
			put(leader, fmt.Sprint("a", i), "v")
		}
		f := c.Followers()[0]
		fi := c.Index(f)
		c.Isolate(fi)
		for i := range 20 {
			put(leader, fmt.Sprint("b", i), "v")
		}
		c.Heal()
		for i := range 20 {
			put(leader, fmt.Sprint("c", i), "v")
		}
		if err := c.TransferLeader(fi); err != nil {
			t.Fatal(err)
		}
		next := c.WaitLeader()
		for i := range 20 {
			put(next, fmt.Sprint("d", i), "v")
		}
		c.WaitApplied()
		for i := range len(c.Nodes()) {
			n := c.Node(i)
			for k, v := range acked {
				resp, err := n.Get(ctx, []byte(k), kvstore.WithSerializable())
				if err != nil || len(resp.KVs) != 1 || string(resp.KVs[0].Value) != v {
					t.Fatalf("member %s: %s = %+v %v, want %q", n.ID(), k, resp, err, v)
				}
			}
		}
	})
}
