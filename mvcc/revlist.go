package mvcc

import (
	"iter"
	"sort"
	"unsafe"
)

// chunkSize is the number of versions in a full chunk of a revList. No
// append copies more than half a chunk, and compaction copies at most one.
// 511 records (16,352 bytes) plus the 8-byte header the allocator puts on
// objects with pointers fill its 16 KiB size class; 512 would spill into the
// next one and waste 11%.
const chunkSize = 511

// headedChunkSize is the largest capacity of a headed tail (see revList): its
// generation facts take one record's room in front of the records.
const headedChunkSize = chunkSize - 1

// revList is one key's versions in revision order: the sequence a Go slice
// would hold, stored so that no operation costs more than a chunk's worth of
// copying however long the history grows.
//
// The versions live in chunks. The last one, the tail, is where appends go;
// it starts with room for one version and doubles up to chunkSize, as a slice
// would, so a key with one version costs one 32-byte record. A full tail is
// sealed: it moves, uncopied, to the list of sealed chunks, and the next
// append starts a fresh chunkSize tail. Sealed chunks hold exactly chunkSize
// versions, except the first, which compaction may have shortened (or which
// was a headed tail); so a version's position maps to its chunk in O(1), and
// a revision to its position by binary search.
//
// Records do not hold their create revision and version number: those follow
// from the record's place in its generation (the run of versions a tombstone
// ends), as in etcd's keyIndex. Every chunk knows the facts of its first
// record (genFacts) and where its last tombstone is; a record's facts are then
// its chunk's first record's, counted on, or those of the generation that
// starts after the last tombstone before it in the chunk. The tail's facts
// are derived when its first record starts a generation (a new key, a new
// generation, after a tombstone); otherwise they are kept in its longList or,
// for a list without one, in front of the tail's records in the same
// allocation (a headed tail: the header is written once, when the chunk is
// made). A compacted key whose generation began in the dropped part so costs
// 48 bytes for one version, as a 48-byte record did; every other version
// costs 32.
//
// A revList is a value, shared by the items and snapshots that copy it, and
// is never modified where any copy can see it: an append writes only past the
// tail length every existing copy has (it returns a new header and, on
// sealing, a new sealedChunks), and dropFront builds a new sealedChunks and,
// when it cuts into a chunk, copies that chunk's survivors. Only the newest
// copy may be appended to, which the store guarantees by appending only to the
// item in its tree, under the write lock. Readers of older copies need no
// lock.
//
// The header is 16 bytes, two words, so that a key's entry in the index
// (the key's string header and this) is 32 bytes: the index holds one per
// key, most keys never fill a chunk, and those that do are few enough to
// pay one more small allocation per sealed chunk (longList).
type revList struct {
	// p points at the tail chunk's first version; or, when meta has the
	// hasLong flag, at the list's longList, which holds that pointer and the
	// sealed chunks. Typed accessors: parts.
	p unsafe.Pointer
	// tailLen is the tail chunk's length.
	tailLen uint32
	// meta holds the tail chunk's capacity (capMask), the offset plus one of
	// its last tombstone (0: none; tombMask), and the lastTombstone, hasLong
	// and headed flags.
	meta uint32
}

// longList is what a revList with sealed chunks points at (and keeps
// pointing at once compaction has dropped them all). It is immutable and
// shared by every copy of the header with the same tail chunk and the same
// sealed chunks, so appends into the tail allocate nothing; sealing a tail
// allocates a new one.
type longList struct {
	tail *version
	// sealed holds the chunks before the tail, nil if none; the tail is
	// then not empty.
	sealed *sealedChunks
	// tailHead is the facts of the tail's first version.
	tailHead genFacts
}

// sealedChunks is the immutable list of a revList's full chunks.
type sealedChunks struct {
	chunks []sealedChunk
	// n is the number of versions in chunks.
	n int
}

type sealedChunk struct {
	versions []version
	// valueBytes is the total value length of versions, so that dropping a
	// whole chunk can be accounted for without reading it.
	valueBytes int64
	// head is the facts of versions[0].
	head genFacts
	// lastTomb is the offset of the chunk's last tombstone, -1 if none.
	lastTomb int
}

// genFacts are the two fields of a KeyValue that a version record does not
// hold: they follow from where the record sits in its generation. A
// tombstone's are zero.
type genFacts struct {
	create, ver int64
}

// next returns the facts of the version after one with facts f: a put in
// the same generation.
func (f genFacts) next() genFacts { return genFacts{f.create, f.ver + 1} }

// startFacts returns the facts of a version that starts a generation (or of
// a tombstone).
func startFacts(v *version) genFacts {
	if v.tombstone() {
		return genFacts{}
	}
	return genFacts{create: v.main, ver: 1}
}

// The fields of revList.meta.
const (
	capMask   = 1<<10 - 1
	tombShift = 16
	tombMask  = capMask << tombShift
	// lastTombstone: the newest version is a tombstone. It lets the
	// reclaimer pass over a key of one live version without reading the
	// version, which would be a cache miss per key (oneLive).
	lastTombstone = 1 << 31
	// hasLong: p points at a longList.
	hasLong = 1 << 30
	// headed: the tail's allocation holds the facts of its first version
	// in the genFacts in front of it (headOf). Never set with hasLong.
	headed = 1 << 29
)

// tailCapacity is the tail chunk's capacity.
func (l revList) tailCapacity() uint32 { return l.meta & capMask }

// tailLastTomb is the offset of the tail's last tombstone, -1 if none.
func (l revList) tailLastTomb() int { return int(l.meta&tombMask>>tombShift) - 1 }

// parts returns the tail chunk's first version and the list's longList (nil
// if none).
func (l revList) parts() (tail *version, long *longList) {
	if l.meta&hasLong != 0 {
		ll := (*longList)(l.p)
		return ll.tail, ll
	}
	return (*version)(l.p), nil
}

// sealed returns the sealed chunks, nil if the list has none.
func (l revList) sealed() *sealedChunks {
	if _, ll := l.parts(); ll != nil {
		return ll.sealed
	}
	return nil
}

// tailVersions returns the tail chunk as a slice.
func (l revList) tailVersions() []version {
	t, _ := l.parts()
	return unsafe.Slice(t, l.tailCapacity())[:l.tailLen]
}

// tailHead returns the facts of the tail's first version; the tail must not
// be empty.
func (l revList) tailHead() genFacts {
	t, ll := l.parts()
	switch {
	case ll != nil:
		return ll.tailHead
	case l.meta&headed != 0:
		return *headOf(t)
	}
	return startFacts(t)
}

// tailChunk describes a tail chunk to install: its versions, whose records
// are final; where the facts of its first version are (derived from it, in
// front of the allocation, or given for a longList); its last tombstone.
type tailChunk struct {
	vs       []version
	headed   bool
	lastTomb int
}

// with returns the list made of tail t and, when long is set, a longList
// holding sealed (nil for none) and the facts of t's first version. It
// reuses l's longList when that holds the same.
func (l revList) with(t tailChunk, long bool, sealed *sealedChunks, head genFacts) revList {
	out := revList{tailLen: uint32(len(t.vs)), meta: uint32(cap(t.vs)) | uint32(t.lastTomb+1)<<tombShift}
	if n := len(t.vs); n > 0 && t.vs[n-1].tombstone() {
		out.meta |= lastTombstone
	}
	tail := unsafe.SliceData(t.vs)
	if !long {
		if t.headed {
			out.meta |= headed
		}
		out.p = unsafe.Pointer(tail)
		return out
	}
	out.meta |= hasLong
	if oldTail, old := l.parts(); old != nil && oldTail == tail && old.sealed == sealed && old.tailHead == head {
		out.p = l.p
	} else {
		out.p = unsafe.Pointer(&longList{tail: tail, sealed: sealed, tailHead: head})
	}
	return out
}

// tail returns the list's tail chunk, to be handed back to with.
func (l revList) tail() tailChunk {
	return tailChunk{vs: l.tailVersions(), headed: l.meta&headed != 0, lastTomb: l.tailLastTomb()}
}

// newChunk returns an empty chunk of capacity c (at most headedChunkSize
// when head is not nil). With head, the allocation holds *head in front of
// the chunk's first record, where headOf finds it: the header of a one-record
// chunk is 16 bytes (48 in all, the size class of one record before records
// lost their facts); a longer chunk gives the header a record's room.
func newChunk(c int, head *genFacts) []version {
	if head == nil {
		return make([]version, 0, c)
	}
	var first *version
	if c == 1 {
		h := &struct {
			head genFacts
			v    version
		}{head: *head}
		first = &h.v
	} else {
		room := make([]version, c+1)
		first = &room[1]
		*headOf(first) = *head
	}
	return unsafe.Slice(first, c)[:0]
}

// headOf returns the facts in front of a headed chunk's first record. The
// 16 bytes before a record are either newChunk's genFacts or the last two
// int64 fields of the record in front (version's layout, pinned by
// TestVersionLayout), never a pointer, so the collector is not misled.
func headOf(first *version) *genFacts {
	return (*genFacts)(unsafe.Add(unsafe.Pointer(first), -int(unsafe.Sizeof(genFacts{}))))
}

// tailFrom returns a tail chunk holding a copy of vs, whose first version
// has facts head and whose last tombstone is at lastTomb: headed when head
// does not follow from vs[0].
func tailFrom(vs []version, head genFacts, lastTomb int) tailChunk {
	t := tailChunk{lastTomb: lastTomb}
	if len(vs) > 0 && head != startFacts(&vs[0]) {
		t.headed = true
		t.vs = append(newChunk(len(vs), &head), vs...)
		return t
	}
	t.vs = clone(vs)
	t.vs = t.vs[:len(t.vs):min(cap(t.vs), chunkSize)]
	return t
}

// lastTombIn returns the offset of the last tombstone in vs, -1 if none.
func lastTombIn(vs []version) int {
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].tombstone() {
			return i
		}
	}
	return -1
}

// factsIn returns the facts of vs[o] in a chunk whose first version has
// facts head and whose last tombstone is at lastTomb.
func factsIn(vs []version, o int, head genFacts, lastTomb int) genFacts {
	if vs[o].tombstone() {
		return genFacts{}
	}
	t := -1 // the last tombstone before o
	switch {
	case lastTomb < o:
		t = lastTomb
	default:
		// A later tombstone exists: only history reads get here, and the
		// walk is at most a chunk.
		t = lastTombIn(vs[:o])
	}
	if t < 0 {
		return genFacts{head.create, head.ver + int64(o)}
	}
	return genFacts{vs[t+1].main, int64(o - t)}
}

// facts returns the create revision and version number of the version at
// position i, 0 <= i < l.len(): zero for a tombstone. O(1) for the newest
// version and for any version of a chunk without a tombstone after it;
// otherwise a walk back through one chunk.
func (l revList) facts(i int) genFacts {
	if s := l.sealed(); s != nil {
		if i < s.n {
			c, o := s.locate(i)
			ch := &s.chunks[c]
			return factsIn(ch.versions, o, ch.head, ch.lastTomb)
		}
		i -= s.n
	}
	return factsIn(l.tailVersions(), i, l.tailHead(), l.tailLastTomb())
}

// lastFacts returns the facts of the newest version; the list must not be
// empty.
func (l revList) lastFacts() genFacts { return l.facts(l.len() - 1) }

// records yields the versions at positions [from, to) with their facts, in
// order, at the cost of one facts call and then O(1) per version. 0 <=
// from and to <= l.len().
func (l revList) records(from, to int) iter.Seq2[*version, genFacts] {
	return func(yield func(*version, genFacts) bool) {
		if from >= to {
			return
		}
		f := l.facts(from)
		prev := (*version)(nil)
		for run := range l.segments(from, to) {
			for i := range run {
				v := &run[i]
				switch {
				case prev == nil: // from's, already known
				case v.tombstone():
					f = genFacts{}
				case prev.tombstone():
					f = startFacts(v)
				default:
					f = f.next()
				}
				prev = v
				if !yield(v, f) {
					return
				}
			}
		}
	}
}

// oneLive reports whether the list holds exactly one version and that
// version is not a tombstone: from the header alone, except for the rare
// list that kept its longList after compaction dropped every sealed chunk.
func (l revList) oneLive() bool {
	if l.tailLen != 1 || l.meta&lastTombstone != 0 {
		return false
	}
	return l.meta&hasLong == 0 || l.sealed() == nil
}

// len returns the number of versions.
func (l revList) len() int {
	if s := l.sealed(); s != nil {
		return s.n + int(l.tailLen)
	}
	return int(l.tailLen)
}

// at returns the version at position i, 0 <= i < l.len().
func (l revList) at(i int) *version {
	if s := l.sealed(); s != nil {
		if i < s.n {
			c, o := s.locate(i)
			return &s.chunks[c].versions[o]
		}
		i -= s.n
	}
	return &l.tailVersions()[i]
}

// last returns the newest version, nil if the list is empty.
func (l revList) last() *version {
	if l.tailLen == 0 {
		return nil
	}
	return &l.tailVersions()[l.tailLen-1]
}

// search returns the number of versions with main <= rev: the position of
// the newest one at or below rev, plus one. A read at the current revision
// costs one comparison; any other costs a binary search.
func (l revList) search(rev int64) int {
	n := l.len()
	if n == 0 || l.last().main <= rev {
		return n
	}
	return sort.Search(n-1, func(i int) bool { return l.at(i).main > rev })
}

// appended returns the list with v added at the end; l itself, and every
// other copy, still reads as before. v.main must be above l's last, and f
// must be v's facts: startFacts(v) for a tombstone or a version after one
// (or on an empty list), the last version's next() otherwise. A version
// whose facts do not follow from the list (the first of a restored key
// whose generation began before what was kept) gets a headed tail.
func (l revList) appended(v version, f genFacts) revList {
	t := l.tail()
	if v.tombstone() {
		t.lastTomb = len(t.vs)
	}
	_, ll := l.parts()
	if ll == nil && len(t.vs) == 0 {
		return l.with(tailFrom([]version{v}, f, t.lastTomb), false, nil, genFacts{})
	}
	long, sealed, head := ll != nil, l.sealed(), genFacts{}
	if long {
		head = ll.tailHead
	}
	limit := chunkSize
	if t.headed {
		limit = headedChunkSize
	}
	switch c := cap(t.vs); {
	case len(t.vs) < c:
		t.vs = append(t.vs, v) // past every copy's tail length
		return l.with(t, long, sealed, head)
	case t.headed && c < limit:
		th := l.tailHead()
		grown := append(newChunk(min(2*c, limit), &th), t.vs...)
		t.vs = append(grown, v)
		return l.with(t, long, sealed, head)
	case 2*c < limit:
		// Doubles, rounded up to the allocator's size class.
		t.vs = append(t.vs, v)
		return l.with(t, long, sealed, head)
	case c < limit:
		grown := make([]version, len(t.vs), limit)
		copy(grown, t.vs)
		t.vs = append(grown, v)
		return l.with(t, long, sealed, head)
	}
	// Seal the full tail. The append may write into chunks' spare capacity,
	// which no copy's length reaches.
	s := &sealedChunks{n: len(t.vs)}
	if sealed != nil {
		s.chunks, s.n = sealed.chunks, sealed.n+len(t.vs)
	}
	tomb := l.tailLastTomb()
	s.chunks = append(s.chunks, sealedChunk{versions: t.vs, valueBytes: valueBytes(t.vs), head: l.tailHead(), lastTomb: tomb})
	fresh := tailChunk{vs: make([]version, 1, chunkSize), lastTomb: -1}
	fresh.vs[0] = v
	if v.tombstone() {
		fresh.lastTomb = 0
	}
	return l.with(fresh, true, s, f)
}

// dropFront returns the list without its first n versions (0 <= n <=
// l.len()) and the total value length of the versions dropped. Whole
// chunks are dropped without being read or copied; a chunk cut into has its
// survivors copied, so that the dropped versions' values can be freed.
func (l revList) dropFront(n int) (revList, int64) {
	if n == 0 {
		return l, 0
	}
	var dropped int64
	if _, ll := l.parts(); ll != nil && ll.sealed != nil {
		s := ll.sealed
		if n < s.n {
			c, o := s.locate(n)
			for _, ch := range s.chunks[:c] {
				dropped += ch.valueBytes
			}
			first := s.chunks[c]
			if o > 0 {
				gone := first.versions[:o]
				first.head = factsIn(first.versions, o, first.head, first.lastTomb)
				first.lastTomb = max(first.lastTomb-o, -1)
				first.versions = clone(first.versions[o:])
				dropped += valueBytes(gone)
				first.valueBytes -= valueBytes(gone)
			}
			kept := make([]sealedChunk, 0, len(s.chunks)-c)
			kept = append(kept, first)
			kept = append(kept, s.chunks[c+1:]...)
			return l.with(l.tail(), true, &sealedChunks{chunks: kept, n: s.n - n}, ll.tailHead), dropped
		}
		for _, ch := range s.chunks {
			dropped += ch.valueBytes
		}
		n -= s.n
		if n == 0 {
			// The tail is untouched: share it, and keep its facts.
			return l.with(l.tail(), true, nil, ll.tailHead), dropped
		}
	}
	t := l.tailVersions()
	dropped += valueBytes(t[:n])
	if n == len(t) {
		return revList{}, dropped
	}
	tomb := l.tailLastTomb()
	head := factsIn(t, n, l.tailHead(), tomb)
	return l.with(tailFrom(t[n:], head, max(tomb-n, -1)), false, nil, genFacts{}), dropped
}

// replacedLast returns the list with its newest version, which must be live,
// replaced by v (same revision and place): the tail is copied, so every other
// copy still reads as before.
func (l revList) replacedLast(v version) revList {
	t := l.tail()
	_, ll := l.parts()
	var nt tailChunk
	if ll != nil {
		nt = tailChunk{vs: clone(t.vs), lastTomb: t.lastTomb}
		nt.vs = nt.vs[:len(nt.vs):min(cap(nt.vs), chunkSize)]
	} else {
		nt = tailFrom(t.vs, l.tailHead(), t.lastTomb)
	}
	nt.vs[len(nt.vs)-1] = v
	if ll != nil {
		return l.with(nt, true, ll.sealed, ll.tailHead)
	}
	return l.with(nt, false, nil, genFacts{})
}

// segments yields the versions at positions [from, to) as contiguous runs,
// in order; nothing if from >= to. 0 <= from and to <= l.len().
func (l revList) segments(from, to int) iter.Seq[[]version] {
	return func(yield func([]version) bool) {
		if s := l.sealed(); s != nil && from < s.n {
			c, o := s.locate(from)
			for ; from < min(to, s.n); c, o = c+1, 0 {
				run := s.chunks[c].versions[o:]
				run = run[:min(len(run), to-from)]
				if !yield(run) {
					return
				}
				from += len(run)
			}
		}
		if from < to {
			offset := l.len() - int(l.tailLen)
			yield(l.tailVersions()[from-offset : to-offset])
		}
	}
}

// locate returns the chunk and the offset in it of sealed position i.
func (s *sealedChunks) locate(i int) (chunk, offset int) {
	first := len(s.chunks[0].versions)
	if i < first {
		return 0, i
	}
	i -= first
	return 1 + i/chunkSize, i % chunkSize
}

// clone copies vs into a fresh array. Its capacity may exceed len(vs) by
// the allocator's rounding, which later appends use.
func clone(vs []version) []version {
	return append([]version(nil), vs...)
}

func valueBytes(vs []version) int64 {
	var n int64
	for i := range vs {
		n += int64(len(vs[i].value()))
	}
	return n
}
