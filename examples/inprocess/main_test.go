package main

import "testing"

// TestDemo runs the demo end to end (real time, on disk), so that it keeps
// working as the API moves.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs in real time")
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
