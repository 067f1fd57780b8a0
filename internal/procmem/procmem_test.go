package procmem

import (
	"runtime"
	"testing"
)

func TestReadsTheProcess(t *testing.T) {
	if h := HeapInUse(); h == 0 {
		t.Fatal("heap in use 0")
	}
	rss := RSS()
	if runtime.GOOS == "linux" && rss < 1<<20 {
		t.Fatalf("RSS %d bytes on Linux, want at least a MiB", rss)
	}
}
