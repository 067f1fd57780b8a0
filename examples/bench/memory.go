package main

import (
	"fmt"

	"github.com/kvstore/kvstore/internal/procmem"
)

// memoryUse is what the process holds at one moment, after a full
// collection: the Go heap in use (every member's state, raft's log cache,
// the dataset the workers pick keys from) and the resident set size.
type memoryUse struct {
	heapInUse uint64 // bytes, runtime.MemStats.HeapInuse after runtime.GC
	rss       uint64 // bytes, /proc/self/status VmRSS; 0 where /proc is missing
}

// measureMemory collects the garbage, returns freed pages to the system and
// reads the heap and RSS. The collection is a full one: at millions of keys
// it takes seconds, so it runs only with -report-memory and never inside a
// timed window.
func measureMemory() memoryUse {
	heap := procmem.HeapInUse()
	return memoryUse{heapInUse: heap, rss: procmem.RSS()}
}

func (m memoryUse) String() string {
	rss := "n/a"
	if m.rss > 0 {
		rss = fmt.Sprint(m.rss>>20, " MiB")
	}
	return fmt.Sprintf("heap in use %d MiB, RSS %s", m.heapInUse>>20, rss)
}
