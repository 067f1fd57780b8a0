package mvcc

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Hash returns a CRC-32C of the store's logical state at rev (0 = current),
// like etcd's HashKV: the compact revision and every version with a revision
// at or below rev that compaction keeps, key by key. Replicas that applied
// the same writes and compactions return the same hash at the same revision,
// whatever physical compaction has done. It takes a snapshot, so it does not
// block writers while it runs.
func (s *Store) Hash(rev int64) (uint32, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return 0, ErrClosed
	}
	rev, err := s.readRevision(rev, s.rev)
	s.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	return s.Snapshot().hash(rev), nil
}

func (sn *Snapshot) hash(rev int64) uint32 {
	var crc uint32
	buf := make([]byte, 0, 4096)
	buf = binary.AppendVarint(buf, sn.compactRev)
	sn.tree.Scan(func(it keyItem) bool {
		from, to := it.compactIndex(sn.compactRev), it.versions.search(rev)
		for v, f := range it.versions.records(from, to) {
			buf = binary.AppendUvarint(buf, uint64(len(it.key)))
			buf = append(buf, it.key...)
			buf = binary.AppendUvarint(buf, uint64(v.main))
			buf = binary.AppendUvarint(buf, uint64(int64(v.sub)))
			buf = binary.AppendUvarint(buf, uint64(f.create))
			buf = binary.AppendUvarint(buf, uint64(f.ver))
			buf = binary.AppendUvarint(buf, uint64(v.lease))
			buf = binary.AppendUvarint(buf, uint64(len(v.value())))
			buf = append(buf, v.value()...)
			if len(buf) > 2048 {
				crc = crc32.Update(crc, castagnoli, buf)
				buf = buf[:0]
			}
		}
		return true
	})
	return crc32.Update(crc, castagnoli, buf)
}

// String describes the store briefly, for logs and test failures.
func (s *Store) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fmt.Sprintf("mvcc.Store{rev: %d, compacted: %d, keys: %d, bytes: %d}", s.rev, max(s.compactRev, 0), s.tree.Len(), s.size)
}
