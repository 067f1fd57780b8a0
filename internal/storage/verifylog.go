package storage

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// VerifyLog checks every command entry of a log store with verify (the
// command format's checksum check) before a node starts on it, so that a
// member whose log was damaged at rest refuses to start (ErrCorruptLog)
// instead of applying, and serving, a damaged entry. It reads the whole
// retained log once: TrailingLogs entries after the last snapshot, some
// milliseconds.
func VerifyLog(logs raft.LogStore, verify func(data []byte) error) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("kvstore: reading the raft log: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("kvstore: reading the raft log: %w", err)
	}
	var l raft.Log
	for i := first; i <= last && last > 0; i++ {
		switch err := logs.GetLog(i, &l); {
		case errors.Is(err, raft.ErrLogNotFound):
			continue
		case err != nil:
			return fmt.Errorf("%w: entry %d: %w", ErrCorruptLog, i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		if err := verify(l.Data); err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrCorruptLog, i, err)
		}
	}
	return nil
}
