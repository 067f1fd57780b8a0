package proccpu

import (
	"runtime"
	"testing"
)

func TestUsedGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no getrusage here")
	}
	before := Used()
	x := 0
	// Spin until the kernel's accounting moves (a tick at most), within a
	// bound far above that.
	for round := 0; Used() == before; round++ {
		if round == 10_000 {
			t.Fatalf("CPU time still %v after 10,000 rounds of work", before)
		}
		for i := range 100_000 {
			x += i
		}
	}
	if after := Used(); after <= before {
		t.Fatalf("CPU time %v after %v and work that summed to %d, want more", after, before, x)
	}
}
