package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// Rule 8: a Compare on the empty key is ErrEmptyKey with a range end too,
// the from-key end "\x00" included, as etcd's checkTxnRequest refuses it
// before looking at the end; nothing is applied.
func TestTxnCompareEmptyKeyWithRange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		n := c.WaitLeader()
		rev := mustPut(t, n, "k", "v")
		for _, end := range []string{"\x00", "z"} {
			_, err := n.Txn(context.Background()).
				If(kvstore.Compare(kvstore.Version(nil), ">", 0).WithRange([]byte(end))).
				Then(kvstore.OpPut([]byte("k"), []byte("w"))).Commit()
			if !errors.Is(err, kvstore.ErrEmptyKey) {
				t.Errorf("compare on \"\" up to %q: %v, want ErrEmptyKey", end, err)
			}
		}
		if got := mustRevision(t, n); got != rev {
			t.Errorf("revision %d after refused txns, want %d", got, rev)
		}
	})
}
