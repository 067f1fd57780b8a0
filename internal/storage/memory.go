package storage

import (
	"sync"

	"github.com/hashicorp/raft"
)

// Memory keeps a node's raft log, stable state and snapshots in memory, and
// outlives the node: a node opened again with the same Memory restarts from
// its state, as from a data dir, without touching the disk. One node at a
// time may use it; it is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	inUse  bool
	meta   *dataMeta
	logs   *memLogStore
	stable *raft.InmemStore
	snaps  *memSnapshotStore
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{logs: &memLogStore{}, stable: raft.NewInmemStore()}
}

// Open claims the storage for the node cfg describes: ErrInUse while
// another node has it open, ErrClusterMismatch or a RemovedError if it
// holds another node's state or a removed one's. Close releases it.
func (m *Memory) Open(cfg Config) (*Storage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inUse {
		return nil, ErrInUse
	}
	if m.meta != nil {
		if err := m.meta.check("", cfg); err != nil {
			return nil, err
		}
	} else {
		m.meta = &dataMeta{Format: metaVersion, Cluster: cfg.Cluster, Node: cfg.Node}
		m.snaps = newMemSnapshotStore(cfg.SnapshotRetain)
	}
	m.inUse = true
	release := func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.inUse = false
		return nil
	}
	markRemoved := func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.meta.Removed = true
		return nil
	}
	return &Storage{Logs: m.logs, Stable: m.stable, Snaps: m.snaps, close: release, markRemoved: markRemoved}, nil
}
