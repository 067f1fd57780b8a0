package kvstore

import (
	"errors"
	"fmt"
	"testing"
)

// Every error a leader may answer a call with crosses the network matchable
// with errors.Is, a read round's "not ready" included (a follower retries
// on it).
func TestWireErrorsRoundTrip(t *testing.T) {
	for _, sentinel := range wireErrors[1:] {
		wrapped := fmt.Errorf("context: %w", sentinel)
		got := toWireError(wrapped).err()
		if !errors.Is(got, sentinel) || got.Error() != wrapped.Error() && !errors.Is(sentinel, ErrNotLeader) {
			t.Errorf("%v came back as %v", wrapped, got)
		}
	}
	nl := toWireError(&NotLeaderError{LeaderID: "n2", LeaderAddress: "a2"}).err()
	var typed *NotLeaderError
	if !errors.As(nl, &typed) || typed.LeaderID != "n2" || typed.LeaderAddress != "a2" {
		t.Errorf("not-leader came back as %#v", nl)
	}
	if !retryableRead(toWireError(errLeaderNotReady).err()) {
		t.Error("a remote not-ready round is not retried")
	}
}
