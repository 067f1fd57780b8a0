package main

import "testing"

// TestMeasure loads, closes and reopens a small node on disk (real time),
// so that the program keeps working as the API moves: measure fails unless
// the reopened node counts every key.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("loads and reopens a node on disk in real time")
	}
	for _, defrag := range []bool{false, true} {
		r, err := measure(2_000, 64, defrag, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.open <= 0 || r.ready <= 0 || defrag != (r.defrag > 0) {
			t.Fatalf("phases not timed (defrag %v): %+v", defrag, r)
		}
	}
}
