package storage

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
)

// repairUnindexedSegments mends, before raft-wal opens dir, the damage that
// raft-wal v0.4.0 (which kvstore used before v0.4.2) could leave there.
//
// When raft cleared a log suffix (a restarted former leader whose
// uncommitted tail the new leader overwrites), v0.4.0 recorded the tail
// segment as sealed without writing the index block a sealed segment is
// read through (hashicorp/raft-wal#31, fixed in v0.4.1). Newer versions
// open such a dir but cannot read that segment's entries ("sealed segment
// has no index block"), so the member could never start again. The entries
// are all in the file, behind checksummed commit frames: this scans the
// segment as raft-wal scans an unsealed tail after a crash (checksums
// verified), writes the index block v0.4.1 would have written, and records
// it in the WAL's meta store. Entries past the segment's recorded last index
// (the truncated ones) stay in the file, unreachable, as in a segment
// v0.4.1 truncated.
//
// meta must be the store the WAL will be opened with; it is left open. It
// returns how many segments it repaired.
func repairUnindexedSegments(dir string, meta *metadb.BoltMetaDB, logger hclog.Logger) (int, error) {
	state, err := meta.Load(dir)
	if err != nil {
		return 0, fmt.Errorf("kvstore: reading raft-wal meta: %w", err)
	}
	filer := segment.NewFiler(dir, fs.New())
	repaired := 0
	for i, info := range state.Segments {
		if info.SealTime.IsZero() || info.IndexStart != 0 {
			continue
		}
		w, err := filer.RecoverTail(info)
		if err != nil {
			return repaired, fmt.Errorf("%w: raft-wal segment %s: sealed without an index block and unreadable: %v", ErrCorruptLog, segment.FileName(info), err)
		}
		indexStart, err := w.ForceSeal()
		if closeErr := w.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return repaired, fmt.Errorf("kvstore: writing the index block of raft-wal segment %s: %w", segment.FileName(info), err)
		}
		state.Segments[i].IndexStart = indexStart
		repaired++
		logger.Warn("rebuilt the index block of a raft-wal segment that raft-wal v0.4.0 sealed without one (hashicorp/raft-wal#31)",
			"segment", segment.FileName(info), "first_index", info.MinIndex, "last_index", info.MaxIndex)
	}
	if repaired == 0 {
		return 0, nil
	}
	if err := meta.CommitState(state); err != nil {
		return repaired, fmt.Errorf("kvstore: recording repaired raft-wal segments: %w", err)
	}
	return repaired, nil
}
