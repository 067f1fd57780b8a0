package kvstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/watch"
)

// TestFSMReportsAnApplyBatchToWatchesAtOnce: the writes of one ApplyBatch
// reach a watch as one response covering all their revisions (not one
// response per revision), before the applied index moves past them; a
// watch started from now afterwards sees none of them.
func TestFSMReportsAnApplyBatchToWatchesAtOnce(t *testing.T) {
	f := newFSM(5, 0, watch.Config{})
	t.Cleanup(func() { f.close() })
	ctx := t.Context()
	ch, err := f.watch(ctx, watch.Request{Key: []byte("k/"), End: []byte("k0")})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := range 5 {
		data, err := wire.EncodeCommand(putCmd(fmt.Sprintf("k/%d", i), "v", 0))
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
	}
	// A compaction inside the batch does not touch a synced watch (rule 22).
	compact, err := wire.EncodeCommand(&wire.Command{Kind: wire.CmdCompact, Revision: 3})
	if err != nil {
		t.Fatal(err)
	}
	logs = append(logs[:3], append([]*raft.Log{{Index: 4, Type: raft.LogCommand, Data: compact}}, logs[3:]...)...)
	for i, l := range logs {
		l.Index = uint64(i + 1)
	}
	f.ApplyBatch(logs)
	if got := f.appliedIndex(); got != uint64(len(logs)) {
		t.Fatalf("applied index %d, want %d", got, len(logs))
	}
	select {
	case r := <-ch:
		if r.Revision != 6 || len(r.Events) != 5 || r.Events[0].KV.ModRevision != 2 || r.Events[4].KV.ModRevision != 6 {
			t.Fatalf("one response for revisions 2..6 expected, got revision %d with %d events", r.Revision, len(r.Events))
		}
	default:
		t.Fatal("the batch was not delivered before ApplyBatch returned")
	}
	select {
	case r := <-ch:
		t.Fatalf("a second response: %+v", r)
	default:
	}
	later, err := f.watch(context.Background(), watch.Request{Key: []byte("k/"), End: []byte("k0"), CreatedNotify: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-later; !r.Created || r.Revision != 6 {
		t.Fatalf("created response %+v, want revision 6", r)
	}
	select {
	case r := <-later:
		t.Fatalf("a watch from now received %+v", r)
	default:
	}
}
