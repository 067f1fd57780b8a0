package kvstore

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
)

// The leader's read rounds keep read-heartbeat state for the other voters
// of its latest configuration only: after a member is removed, the next
// round drops its entry (a cluster whose members come and go would
// otherwise keep one per member it ever had).
func TestLeaderReadRoundsForgetARemovedMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes, leader := openReadQuorumCluster(t, 3)
		ctx := context.Background()
		// Each Get below is answered by a round that ran on the read-index
		// goroutine; its answer orders the round's map writes before the
		// reads of readPeers here, and no other reader runs meanwhile.
		if _, err := leader.Get(ctx, []byte("k")); err != nil {
			t.Fatal(err)
		}
		var removed string
		var others []string
		for _, n := range nodes {
			if n != leader {
				others = append(others, n.cfg.id)
			}
		}
		if got := readPeerIDs(leader); !slices.Equal(got, others) {
			t.Fatalf("read peers after a read: %v, want %v", got, others)
		}
		removed = others[0]
		if err := leader.RemoveMember(ctx, removed); err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Get(ctx, []byte("k")); err != nil {
			t.Fatal(err)
		}
		if got, want := readPeerIDs(leader), others[1:]; !slices.Equal(got, want) {
			t.Fatalf("read peers after %s was removed: %v, want %v", removed, got, want)
		}
	})
}

func readPeerIDs(n *Node) []string {
	var ids []string
	for id := range n.readPeers {
		ids = append(ids, string(id))
	}
	slices.Sort(ids)
	return ids
}
