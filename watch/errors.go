package watch

import "errors"

// Errors returned by [Hub.Watch] and carried by a final [Response]. Each is a
// sentinel matched with errors.Is. A watch cancelled by compaction carries
// mvcc.ErrCompacted itself, so errors.Is(resp.Err, mvcc.ErrCompacted) holds.
var (
	// ErrInvalidRange reports a watch whose range end sorts at or before its
	// key (SEMANTICS.md rule 20). The from-key end "\x00" is never invalid.
	ErrInvalidRange = errors.New("watch: range end sorts at or before key")
	// ErrNegativeRevision reports a watch with a negative start revision
	// (SEMANTICS.md rule 19).
	ErrNegativeRevision = errors.New("watch: negative start revision")
	// ErrClosed reports a watch on a closed hub, and is the Err of the last
	// response of every watch the hub's Close ended.
	ErrClosed = errors.New("watch: hub closed")
)
