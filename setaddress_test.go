package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// SetMemberAddress records a new address only for a member that answers
// there; an unknown member, an address another member has, or one nobody
// answers at is refused and the recorded address stays.
func TestSetMemberAddressRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		f := c.Followers()[0]
		id, addr := f.ID(), c.Address(c.Index(f))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.SetMemberAddress(ctx, id, addr); err != nil {
			t.Fatalf("recording the recorded address: %v", err)
		}
		if err := leader.SetMemberAddress(ctx, "n9", "n9"); !errors.Is(err, kvstore.ErrMemberNotFound) {
			t.Errorf("unknown member: %v, want ErrMemberNotFound", err)
		}
		other := c.Address(c.Index(leader))
		if err := f.SetMemberAddress(ctx, id, other); !errors.Is(err, kvstore.ErrMemberExists) {
			t.Errorf("another member's address: %v, want ErrMemberExists", err)
		}
		if err := leader.SetMemberAddress(ctx, id, "nowhere"); err == nil {
			t.Error("an address nobody answers at was recorded")
		}
		members, err := leader.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if m.ID == id && m.Address != addr {
				t.Errorf("%s is recorded at %s after refused changes, want %s", id, m.Address, addr)
			}
		}
	})
}
