package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// memSnapshotStore is a raft.SnapshotStore in memory, for nodes with
// in-memory storage. Unlike raft's InmemSnapshotStore it publishes a
// snapshot only when its sink is closed, so a reader never sees a partly
// written one, and it keeps the newest retain snapshots. Safe for concurrent
// use.
type memSnapshotStore struct {
	retain int
	mu     sync.Mutex
	snaps  []*memSnapshot // oldest first
}

type memSnapshot struct {
	meta raft.SnapshotMeta
	data []byte
}

func newMemSnapshotStore(retain int) *memSnapshotStore {
	return &memSnapshotStore{retain: max(retain, 1)}
}

// Create implements raft.SnapshotStore.
func (s *memSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("kvstore: unsupported snapshot version %d", version)
	}
	meta := raft.SnapshotMeta{
		Version: version, ID: fmt.Sprintf("%d-%d", term, index), Index: index, Term: term,
		Configuration: configuration, ConfigurationIndex: configurationIndex,
	}
	return &memSnapshotSink{store: s, meta: meta}, nil
}

// List implements raft.SnapshotStore: newest first.
func (s *memSnapshotStore) List() ([]*raft.SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*raft.SnapshotMeta, 0, len(s.snaps))
	for _, snap := range slices.Backward(s.snaps) {
		meta := snap.meta
		out = append(out, &meta)
	}
	return out, nil
}

// Open implements raft.SnapshotStore.
func (s *memSnapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, snap := range s.snaps {
		if snap.meta.ID == id {
			meta := snap.meta
			return &meta, io.NopCloser(bytes.NewReader(snap.data)), nil
		}
	}
	return nil, nil, fmt.Errorf("kvstore: snapshot %q not found", id)
}

func (s *memSnapshotStore) publish(snap *memSnapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snaps = append(s.snaps, snap)
	if n := len(s.snaps); n > s.retain {
		s.snaps = append([]*memSnapshot(nil), s.snaps[n-s.retain:]...)
	}
}

type memSnapshotSink struct {
	store *memSnapshotStore
	meta  raft.SnapshotMeta
	buf   bytes.Buffer
	done  bool
}

func (k *memSnapshotSink) Write(p []byte) (int, error) {
	if k.done {
		return 0, errors.New("kvstore: write to a finished snapshot")
	}
	return k.buf.Write(p)
}

// Close publishes the snapshot.
func (k *memSnapshotSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	k.meta.Size = int64(k.buf.Len())
	k.store.publish(&memSnapshot{meta: k.meta, data: k.buf.Bytes()})
	return nil
}

func (k *memSnapshotSink) ID() string { return k.meta.ID }

// Cancel discards the snapshot.
func (k *memSnapshotSink) Cancel() error {
	k.done = true
	k.buf = bytes.Buffer{}
	return nil
}
