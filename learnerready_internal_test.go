package kvstore

import (
	"errors"
	"testing"
)

// SEMANTICS.md rule 25: a learner is promoted once its match reaches nine
// tenths of the leader's last index, and not before, nor when it has not
// answered in the leader's term.
func TestCheckLearnerReady(t *testing.T) {
	for _, tc := range []struct {
		name        string
		last, match uint64
		answered    bool
		ready       bool
	}{
		{"caught up", 100, 100, true, true},
		{"at nine tenths", 100, 90, true, true},
		{"just under nine tenths", 100, 89, true, false},
		{"empty", 100, 0, true, false},
		{"not answered, though its match was full", 100, 100, false, false},
		{"nine tenths of an index not a multiple of ten", 25, 23, true, true},
		{"under nine tenths of it", 25, 22, true, false},
	} {
		err := checkLearnerReady("n4", 3, tc.last, tc.match, tc.answered)
		if tc.ready && err != nil {
			t.Errorf("%s: %v, want ready", tc.name, err)
		}
		if !tc.ready && !errors.Is(err, ErrLearnerNotReady) {
			t.Errorf("%s: %v, want ErrLearnerNotReady", tc.name, err)
		}
	}
}
