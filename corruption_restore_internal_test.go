package kvstore

import (
	"bytes"
	"io"
	"testing"

	"github.com/kvstore/kvstore/internal/wire"
)

// TestHashCacheForgetsARestoredState: the cached hash at the compact
// revision is not reused after a snapshot replaced the state, even at the
// same compact revision, so a corrupt snapshot cannot hide behind the hash
// of the state it replaced.
func TestHashCacheForgetsARestoredState(t *testing.T) {
	a, b := newApplier(t), newApplier(t)
	a.apply(putCmd("k", "1", 0))
	a.apply(putCmd("k", "2", 0))
	a.apply(&wire.Command{Kind: wire.CmdCompact, Revision: 3})
	b.apply(putCmd("k", "other", 0))
	b.apply(putCmd("k", "values", 0))
	b.apply(&wire.Command{Kind: wire.CmdCompact, Revision: 3})
	b.apply(&wire.Command{Kind: wire.CmdLeaseCheckpoint}) // b is ahead in the log
	n := &Node{fsm: a.f, cfg: config{id: "n1"}}
	before, err := n.hashAt(3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := b.f.hash(3)
	if err != nil {
		t.Fatal(err)
	}
	if before.hash == want {
		t.Fatal("the two states hash alike: the test shows nothing")
	}
	snap, err := b.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*fsmSnapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	if err := a.f.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	after, err := n.hashAt(3)
	if err != nil {
		t.Fatal(err)
	}
	if after.hash != want {
		t.Fatalf("hash after the restore %08x, want the restored state's %08x (the cached one was %08x)", after.hash, want, before.hash)
	}
}
