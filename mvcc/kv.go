package mvcc

// Revision identifies one change: Main is the store revision of the write
// transaction, Sub the change's position inside it (0, 1, ...).
type Revision struct {
	Main int64
	Sub  int64
}

// Less reports whether r sorts before o.
func (r Revision) Less(o Revision) bool {
	return r.Main < o.Main || (r.Main == o.Main && r.Sub < o.Sub)
}

// KeyValue is one version of a key, as etcd's mvccpb.KeyValue.
//
// Key and Value alias the store's memory, which is never modified after it is
// written: callers may keep them for as long as they like but must not
// modify them.
type KeyValue struct {
	Key   []byte
	Value []byte
	// CreateRevision is the revision of the put that created the key's
	// current generation.
	CreateRevision int64
	// ModRevision is the revision of the key's last change.
	ModRevision int64
	// Version counts the puts in the current generation: 1 on create, +1 on
	// each put. A delete ends the generation.
	Version int64
	// Lease is the ID of the lease the key is attached to, 0 for none.
	Lease int64
}

// EventType says what an Event did to its key.
type EventType uint8

const (
	// EventPut is a put: a create or a modification.
	EventPut EventType = iota
	// EventDelete is a delete; the event's KV carries only Key and ModRevision.
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Event is one change made by a write transaction.
type Event struct {
	Type EventType
	// KV is the key after the change. For a delete only Key and ModRevision
	// are set.
	KV KeyValue
	// PrevKV is the key just before the change, nil when it did not exist
	// (or, in history, when that version has been compacted away).
	PrevKV *KeyValue
	// Sub is the change's position in its revision.
	Sub int64
}

// IsCreate reports whether the event created its key.
func (e *Event) IsCreate() bool { return e.Type == EventPut && e.KV.Version == 1 }

// IsModify reports whether the event updated an existing key.
func (e *Event) IsModify() bool { return e.Type == EventPut && e.KV.Version > 1 }
