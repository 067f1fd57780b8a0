package kvstore_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore/kvtest"
)

// TestStatusCountsLiveKeys: Status.Keys counts the keys that exist, not the
// deleted ones whose history the store still holds, on every member.
func TestStatusCountsLiveKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		n := c.WaitLeader()
		for _, k := range []string{"a", "b", "c"} {
			if _, err := n.Put(ctx, []byte(k), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := n.Delete(ctx, []byte("b")); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, []byte("c"), []byte("w")); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied()
		for _, m := range c.Nodes() {
			if st := m.Status(); st.Keys != 2 {
				t.Errorf("%s: Status.Keys = %d after putting a, b, c and deleting b, want 2", st.ID, st.Keys)
			}
		}
	})
}
