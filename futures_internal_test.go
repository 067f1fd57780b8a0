package kvstore

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/watch"
)

// TestBindShutdownReachesRaftFutures pins the hashicorp/raft layout that
// bindShutdown relies on: every future type a Node waits on has a settable
// ShutdownCh, and closing it ends Error.
func TestBindShutdownReachesRaftFutures(t *testing.T) {
	conf := raft.DefaultConfig()
	conf.LocalID = "a"
	conf.Logger = hclog.NewNullLogger()
	store := raft.NewInmemStore()
	_, tr := raft.NewInmemTransport("a")
	r, err := raft.NewRaft(conf, newFSM(1, 128, watch.Config{}), store, store, raft.NewDiscardSnapshotStore(), tr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown()
	// Not bootstrapped: a follower forever, so leader-only futures stay
	// queued or fail; each must be bindable.
	futures := map[string]raft.Future{
		"GetConfiguration": r.GetConfiguration(),
		"VerifyLeader":     r.VerifyLeader(),
	}
	for name, f := range futures {
		stop := make(chan struct{})
		if !bindShutdown(f, stop) {
			t.Errorf("%s: %T has no settable ShutdownCh", name, f)
		}
	}
	// Apply and Barrier return their future only once raft's loop takes
	// it; check the type they use through an Apply that raft answers.
	apply := r.Apply([]byte("x"), 0)
	if !bindShutdown(apply, make(chan struct{})) {
		t.Errorf("Apply: %T has no settable ShutdownCh", apply)
	}
	if err := apply.Error(); err != raft.ErrNotLeader {
		t.Errorf("apply on a follower: %v", err)
	}
}
