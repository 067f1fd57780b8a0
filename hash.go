package kvstore

import (
	"fmt"
	"hash/crc32"
)

// HashResponse answers Hash.
type HashResponse struct {
	// Header.Revision is the revision of the state hashed.
	Header Header
	// Hash is the CRC-32C of the state.
	Hash uint32
}

// Hash hashes this node's whole state as a backup holds it (Node.Backup's
// body, the FSM snapshot): every key version kept, the leases with their
// remaining TTL, the alarms and the applied raft index. It is etcd's
// Maintenance.Hash, which hashes the whole backend. It reads local state
// only, without a linearizable read point; members that have applied the
// same log index hash alike, but a member's hash changes with every entry
// it applies (leader no-ops and lease ticks included), so compare members
// with HashKV at a revision, not with Hash. It holds an O(1) copy-on-write
// view while it hashes; writes go on. It is safe for concurrent use.
func (n *Node) Hash() (*HashResponse, error) {
	if n.closedCtx.Err() != nil {
		return nil, n.errClosed()
	}
	snap, err := n.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	fs := snap.(*fsmSnapshot)
	h := crc32.New(castagnoli)
	if err := fs.write(h); err != nil {
		return nil, fmt.Errorf("kvstore: hash: %w", err)
	}
	return &HashResponse{Header: n.header(fs.kv.Revision()), Hash: h.Sum32()}, nil
}
