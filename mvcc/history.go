package mvcc

import (
	"fmt"
	"math"
	"sort"
	"unsafe"
)

// logEntry records that a key changed at a main revision: the key's bytes
// (shared with the key string its index item holds) and the revision as an
// offset from its chunk's base, 16 bytes where a string and an int64 took
// 24 (8 MB at 1M keys). The store keeps one per change, in revision order,
// so that history reads cost what they return rather than the size of the
// key space.
type logEntry struct {
	key   *byte
	klen  uint32
	delta uint32 // main revision minus the chunk's base (logChunk.wide when it does not fit)
}

// logChunkSize is the number of entries per chunk: appends never copy more
// than one chunk's worth of memory.
const logChunkSize = 4096

// logChunk is logChunkSize entries of the change log.
type logChunk struct {
	base    int64 // the main revision of the chunk's first entry
	entries []logEntry
	// wide holds the main revision of every entry of the chunk once one of
	// them is more than 2^32-1 past base, nil until then. Live writes never
	// need it (each revision has a change, so a chunk spans 4,096 revisions
	// at most); the log a restore rebuilds holds only surviving versions, and
	// its gaps are unbounded.
	wide []int64
}

func (c *logChunk) main(j int) int64 {
	if c.wide != nil {
		return c.wide[j]
	}
	return c.base + int64(c.entries[j].delta)
}

// widen moves the chunk's first n revisions into wide.
func (c *logChunk) widen(n int) {
	c.wide = make([]int64, logChunkSize)
	for j := range n {
		c.wide[j] = c.base + int64(c.entries[j].delta)
	}
}

// revLog is the store's change log, an append-only sequence of changes in
// revision order, kept in fixed-size chunks. It is read and written under
// the store's lock only; trimming builds a new chunk list.
type revLog struct {
	chunks []*logChunk
	// head is the index in chunks[0] of the first live entry.
	head int
	// n is the number of live entries.
	n int
}

// at returns the key and main revision of the i-th live entry. The key
// aliases the index's key string.
func (l *revLog) at(i int) (key string, main int64) {
	i += l.head
	c := l.chunks[i/logChunkSize]
	j := i % logChunkSize
	e := &c.entries[j]
	return unsafe.String(e.key, e.klen), c.main(j)
}

// mainAt returns the main revision of the i-th live entry.
func (l *revLog) mainAt(i int) int64 {
	i += l.head
	return l.chunks[i/logChunkSize].main(i % logChunkSize)
}

// append records that key changed at main, which is at least the last
// entry's; key must be the string the key's index item holds, so that the
// entry shares its bytes.
func (l *revLog) append(key string, main int64) {
	end := l.head + l.n
	j := end % logChunkSize
	if j == 0 && end/logChunkSize == len(l.chunks) {
		l.chunks = append(l.chunks, &logChunk{base: main, entries: make([]logEntry, logChunkSize)})
	}
	c := l.chunks[end/logChunkSize]
	d := main - c.base
	if c.wide == nil && (d < 0 || d > math.MaxUint32) {
		c.widen(j)
	}
	e := logEntry{key: unsafe.StringData(key), klen: uint32(len(key))}
	if c.wide != nil {
		c.wide[j] = main
	} else {
		e.delta = uint32(d)
	}
	c.entries[j] = e
	l.n++
}

// search returns the position of the first entry with main >= rev.
func (l *revLog) search(rev int64) int {
	return sort.Search(l.n, func(i int) bool { return l.mainAt(i) >= rev })
}

// trimBefore drops the entries with main < rev.
func (l *revLog) trimBefore(rev int64) {
	drop := l.search(rev)
	if drop == 0 {
		return
	}
	start := l.head + drop
	l.chunks = append([]*logChunk(nil), l.chunks[start/logChunkSize:]...)
	l.head = start % logChunkSize
	l.n -= drop
}

// HistoryRequest asks for the events on keys in [Key, End) (End as in
// RangeRequest) with main revisions in [From, To].
type HistoryRequest struct {
	Key []byte
	End []byte
	// From is the first revision to return; 0 or negative means 1.
	From int64
	// To is the last revision to return; 0 means the current revision.
	To int64
	// Limit stops after the revision at which at least Limit events have
	// been collected; the events of one revision are never split. 0 means no
	// limit.
	Limit int
}

// HistoryResult answers a HistoryRequest.
type HistoryResult struct {
	// Events in revision order, and within a revision in the order the
	// write transaction made them.
	Events []Event
	// Next is the first revision not yet returned: To+1 when the request is
	// complete, less when Limit cut it short.
	Next int64
	// Revision is the store's current revision.
	Revision int64
}

// History returns the events on a key range between two revisions, with each
// event's PrevKV set when the previous version is still held. Its cost is
// proportional to the changes in the revision window, not to the number of
// keys. From below the compact revision is ErrCompacted (From equal to it is
// fine: it returns the changes at exactly the compact revision, which have
// no PrevKV, SEMANTICS.md rule 21); From above the current revision returns no
// events with Next = From.
func (s *Store) History(r HistoryRequest) (HistoryResult, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return HistoryResult{}, ErrClosed
	}
	from, to := r.From, r.To
	if from <= 0 {
		from = 1
	}
	if from < s.compactRev {
		return HistoryResult{Revision: s.rev}, fmt.Errorf("%w: history from %d, compacted at %d", ErrCompacted, from, s.compactRev)
	}
	if to <= 0 || to > s.rev {
		to = s.rev
	}
	res := HistoryResult{Next: from, Revision: s.rev}
	if from > to {
		return res, nil
	}
	sel := newKeyRange(r.Key, r.End)
	for i := s.log.search(from); i < s.log.n; i++ {
		key, main := s.log.at(i)
		if main > to {
			break
		}
		if r.Limit > 0 && len(res.Events) >= r.Limit && main != res.Next-1 {
			// The previous revision is complete and the limit is reached.
			return res, nil
		}
		res.Next = main + 1
		if !sel.contains(key) {
			continue
		}
		it, ok := s.tree.Get(keyItem{key: key})
		if !ok {
			continue // compacted: a tombstone at the compact revision
		}
		if ev, ok := s.eventAt(&it, main); ok {
			res.Events = append(res.Events, ev)
		}
	}
	res.Next = to + 1
	return res, nil
}

// eventAt renders the change the item had at main revision rev, hiding
// versions older than the compact revision (physical compaction may not have
// removed them yet).
func (s *Store) eventAt(it *keyItem, rev int64) (Event, bool) {
	i := it.find(rev)
	if i < 0 {
		return Event{}, false
	}
	v := it.versions.at(i)
	ev := Event{Sub: int64(v.sub)}
	if v.tombstone() {
		ev.Type = EventDelete
		ev.KV = KeyValue{Key: it.keyBytes(), ModRevision: v.main}
	} else {
		ev.Type = EventPut
		ev.KV = it.kv(fullVersion{v, it.versions.facts(i)})
	}
	// The previous version survives compaction when it is the newest one at
	// or below the compact revision, i.e. when this event is above it.
	if i > 0 && rev > s.compactRev {
		if p := it.versions.at(i - 1); !p.tombstone() {
			kv := it.kv(fullVersion{p, it.versions.facts(i - 1)})
			ev.PrevKV = &kv
		}
	}
	return ev, true
}

// keyRange is a parsed [key, end) selection.
type keyRange struct {
	key, end string
	single   bool // end empty: the key alone
	fromKey  bool // end "\x00": every key >= key
}

// newKeyRange parses key and end. The range aliases their bytes: it lives
// only as long as the request it came from.
func newKeyRange(key, end []byte) keyRange {
	kr := keyRange{key: aliasString(key), end: aliasString(end)}
	switch {
	case len(end) == 0:
		kr.single = true
	case len(end) == 1 && end[0] == 0:
		kr.fromKey = true
	}
	return kr
}

// empty reports a range that selects nothing: an end at or before the key
// (SEMANTICS.md rule 8).
func (kr keyRange) empty() bool {
	return !kr.single && !kr.fromKey && kr.end <= kr.key
}

func (kr keyRange) contains(k string) bool {
	switch {
	case kr.single:
		return k == kr.key
	case kr.fromKey:
		return k >= kr.key
	}
	return k >= kr.key && k < kr.end
}

// beyond reports whether k is past the range's end (iteration in key order
// can stop).
func (kr keyRange) beyond(k string) bool {
	switch {
	case kr.single:
		return k > kr.key
	case kr.fromKey:
		return false
	}
	return k >= kr.end
}
