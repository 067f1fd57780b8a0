package storage

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest log entries in memory in front of an on-disk
// log store. raft reads back every entry it has just written (the leader
// to replicate it to each follower, every member to apply it); without a
// cache each read is a syscall and a decode, a quarter of the CPU of a
// 64-writer put load.
//
// It is raft's LogCache with two differences. It is bounded in bytes as
// well as in entries: 1,024 entries of txns of 100 puts are 28 MB, for
// reads that need only the few entries in flight. And it keeps copies of
// the raft.Log structs it is given, not the pointers: on the leader those
// point into raft's futures, and holding one kept the future and its apply
// result alive.
//
// It is safe for concurrent use: raft reads from several goroutines while
// its log goroutine appends.
type logCache struct {
	raft.LogStore

	mu sync.RWMutex
	// slots holds entry i at i % len(slots), if cached.
	slots []raft.Log
	// bytes is the data held by the cached entries, at most maxBytes but
	// for the newest entry; oldest is the lowest index that may be cached.
	bytes, maxBytes int
	oldest          uint64
}

// newLogCache caches up to entries entries and maxBytes bytes of data in
// front of store; both must be positive.
func newLogCache(store raft.LogStore, entries, maxBytes int) *logCache {
	return &logCache{LogStore: store, slots: make([]raft.Log, entries), maxBytes: maxBytes}
}

// IsMonotonic passes on the wrapped store's answer: raft treats a monotonic
// store differently after a snapshot restore.
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// GetLog implements raft.LogStore.
func (c *logCache) GetLog(index uint64, log *raft.Log) error {
	c.mu.RLock()
	slot := &c.slots[index%uint64(len(c.slots))]
	hit := slot.Index == index && index != 0
	if hit {
		*log = *slot
	}
	c.mu.RUnlock()
	if hit {
		return nil
	}
	return c.LogStore.GetLog(index, log)
}

// StoreLog implements raft.LogStore.
func (c *logCache) StoreLog(log *raft.Log) error {
	return c.StoreLogs([]*raft.Log{log})
}

// StoreLogs implements raft.LogStore: the entries are cached once the store
// has taken them.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return fmt.Errorf("kvstore: storing raft log entries: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		slot := &c.slots[l.Index%uint64(len(c.slots))]
		if slot.Index != 0 {
			c.bytes -= len(slot.Data)
		}
		*slot = *l
		c.bytes += len(l.Data)
		if c.oldest == 0 || l.Index < c.oldest {
			c.oldest = l.Index
		}
	}
	c.evictLocked(logs[len(logs)-1].Index)
	return nil
}

// evictLocked drops the oldest entries until the data fits in maxBytes,
// keeping the newest entry, newest, whatever its size.
func (c *logCache) evictLocked(newest uint64) {
	if window := uint64(len(c.slots)); newest >= window {
		c.oldest = max(c.oldest, newest-window+1) // the older ones were overwritten
	}
	for ; c.bytes > c.maxBytes && c.oldest < newest; c.oldest++ {
		slot := &c.slots[c.oldest%uint64(len(c.slots))]
		if slot.Index == c.oldest {
			c.bytes -= len(slot.Data)
			*slot = raft.Log{}
		}
	}
}

// DeleteRange implements raft.LogStore; it empties the cache.
func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	clear(c.slots)
	c.bytes, c.oldest = 0, 0
	c.mu.Unlock()
	return c.LogStore.DeleteRange(min, max)
}
