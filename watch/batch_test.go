package watch_test

import (
	"testing"

	"github.com/kvstore/kvstore/watch"
)

// NotifyBatch returns the responses it put on synced watches' channels: one
// per watch per run of consecutive revisions, none for a watch the batch
// does not touch or one whose full channel sends it to catching up, and
// none once the hub is closed.
func TestNotifyBatchCountsResponses(t *testing.T) {
	e := newEnv(t, watch.Config{BufferSize: 2})
	e.batch = &watch.Batch{}
	ctx := t.Context()
	watchKey := func(key string, end string) <-chan watch.Response {
		t.Helper()
		ch, err := e.h.Watch(ctx, watch.Request{Key: []byte(key), End: []byte(end)})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	a := watchKey("a", "")
	all := watchKey("", "\x00")
	full := watchKey("f", "")
	_ = watchKey("z", "")
	// notify reports the batch, then takes what the watch on every key
	// received, so that only the watch on f fills up.
	notify := func() int {
		t.Helper()
		n := e.h.NotifyBatch(e.batch)
		e.batch.Reset()
		for len(all) > 0 {
			<-all
		}
		return n
	}

	e.put("a", "1")
	e.put("b", "1")
	if got := notify(); got != 2 {
		t.Fatalf("a batch of puts on a and b: %d responses, want 2 (watch a, watch all)", got)
	}
	// Fill the channel of the watch on f: its third response finds it full.
	for range 2 {
		e.put("f", "1")
		if got := notify(); got != 2 {
			t.Fatalf("a put on f: %d responses, want 2", got)
		}
	}
	e.put("f", "2")
	if got := notify(); got != 1 {
		t.Fatalf("a put on f whose watch is full: %d responses, want 1 (watch all only)", got)
	}
	if got := notify(); got != 0 {
		t.Fatalf("an empty batch: %d responses", got)
	}
	if len(a) != 1 || len(full) != 2 {
		t.Fatalf("the watch on a holds %d responses, the one on f %d; want 1 and 2", len(a), len(full))
	}
	e.put("y", "1")
	e.h.Close()
	if got := notify(); got != 0 {
		t.Fatalf("after Close: %d responses", got)
	}
}

// A delivery shared between processors (more than 512 watches on 2 or more
// processors) counts the responses of every part.
func TestNotifyBatchCountsResponsesOfEveryPart(t *testing.T) {
	e := newEnv(t, watch.Config{})
	e.batch = &watch.Batch{}
	const watches = 600
	for range watches {
		if _, err := e.h.Watch(t.Context(), watch.Request{Key: []byte("k")}); err != nil {
			t.Fatal(err)
		}
	}
	e.put("k", "1")
	e.put("k", "2")
	if got := e.h.NotifyBatch(e.batch); got != watches {
		t.Fatalf("two puts on a key %d watches watch: %d responses, want %d (one each)", watches, got, watches)
	}
}
