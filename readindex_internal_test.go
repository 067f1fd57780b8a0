package kvstore

import (
	"errors"
	"testing"
)

// Every round the batcher hands out is answered: the pending one when the
// read-index goroutine stops, and any joined later at once, so readers
// need not also wait on the node's closed channel.
func TestReadBatcherAnswersEveryRoundAfterStop(t *testing.T) {
	var b readBatcher
	b.init()
	pending := b.join()
	if b.join() != pending {
		t.Fatal("a second reader did not join the pending round")
	}
	stopErr := errors.New("closed")
	b.stop(stopErr)
	for i, r := range []*readRound{pending, b.join()} {
		select {
		case <-r.done:
		default:
			t.Fatalf("round %d not answered after stop", i)
		}
		if r.err != stopErr {
			t.Fatalf("round %d answered %v, want the stop error", i, r.err)
		}
	}
	if b.take() != nil {
		t.Fatal("a round is still pending after stop")
	}
}
