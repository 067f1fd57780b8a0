package kvstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore/kvtest"
)

// TestRemovedMemberWithAStaleTailLearnsOfItsRemoval: a member that holds
// an older term's uncommitted entries past the index of its removal still
// acts on the removal notice. Cut off with a leader that appended writes
// only the two of them have, the victim's log reaches past the index at
// which the new leader, right after the partition heals, commits its
// removal, and the leader stops replicating to it before overwriting that
// tail. The notice used to be ignored there, the long log read as that of
// a later incarnation added again; the member never learned it was out.
func TestRemovedMemberWithAStaleTailLearnsOfItsRemoval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 5)
		ctx, cancel := context.WithTimeout(context.Background(), kvtest.Timeout)
		defer cancel()
		old := c.WaitLeader()
		oldIndex := c.Index(old)
		victimIndex := (oldIndex + 1) % 5
		victim := c.Node(victimIndex)
		var majority []int
		for i := range 5 {
			if i != oldIndex && i != victimIndex {
				majority = append(majority, i)
			}
		}
		c.Partition([]int{oldIndex, victimIndex}, majority)
		// Entries the cut-off leader replicates to the victim only.
		var wg sync.WaitGroup
		for w := range 10 {
			wg.Go(func() {
				pctx, pcancel := context.WithTimeout(ctx, 20*time.Millisecond)
				defer pcancel()
				if _, err := old.Put(pctx, []byte("k"), []byte(fmt.Sprint(w))); err == nil {
					t.Errorf("a put on a leader in the minority succeeded")
				}
			})
		}
		wg.Wait()
		leader := c.WaitLeader()
		c.Heal()
		if err := leader.RemoveMember(ctx, victim.ID()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-victim.Removed():
		case <-ctx.Done():
			st := victim.Status()
			t.Fatalf("the removed member never learned it was removed: %v; it is %s in term %d, commit %d", ctx.Err(), st.RaftState, st.RaftTerm, st.CommitIndex)
		}
		c.Stop(victimIndex)
	})
}
