// Package procmem reads what the process holds in memory, for the example
// programs that report it (examples/bench -report-memory, examples/restart).
package procmem

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// HeapInUse runs a full collection, returns freed pages to the system and
// reports the Go heap in use (runtime.MemStats.HeapInuse), in bytes. At
// millions of keys the collection takes seconds: never call it inside a
// timed window.
func HeapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// RSS reports the process's resident set size in bytes (VmRSS of
// /proc/self/status), 0 where /proc is missing (any OS but Linux).
func RSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
