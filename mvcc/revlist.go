package mvcc

import (
	"iter"
	"sort"
	"unsafe"
)

// chunkSize is the number of versions in a full chunk of a revList. No
// append copies more than half a chunk, and compaction copies at most one.
// 511 records (24,528 bytes) plus the 8-byte header the allocator puts on
// objects with pointers fill its 24 KiB size class; 512 would spill into the
// next one and waste 10%.
const chunkSize = 511

// revList is one key's versions in revision order: the sequence a Go slice
// would hold, stored so that no operation costs more than a chunk's worth of
// copying however long the history grows.
//
// The versions live in chunks. The last one, the tail, is where appends go;
// it starts with room for one version and doubles up to chunkSize, as a slice
// would, so a key with one version costs one 48-byte record. A full tail is
// sealed: it moves, uncopied, to the list of sealed chunks, and the next
// append starts a fresh chunkSize tail. Sealed chunks hold exactly chunkSize
// versions, except the first, which compaction may have shortened; so a
// version's position maps to its chunk in O(1), and a revision to its
// position by binary search.
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
	// p points at the tail chunk's first version; or, when tailCap has the
	// hasSealed flag, at the list's longList, which holds that pointer and
	// the sealed chunks. Typed accessors: parts.
	p unsafe.Pointer
	// tailLen and tailCap are the tail chunk's length and capacity,
	// tailCap with the lastTombstone and hasSealed flags in its top bits.
	tailLen, tailCap uint32
}

// longList is what a revList with sealed chunks points at. It is immutable
// and shared by every copy of the header with the same tail chunk and the
// same sealed chunks, so appends into the tail allocate nothing; sealing a
// tail allocates a new one.
type longList struct {
	tail *version
	// sealed holds the chunks before the tail; never nil, and the tail is
	// then not empty.
	sealed *sealedChunks
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
}

// lastTombstone is a flag in tailCap's top bit (a tail's capacity is at
// most chunkSize): the newest version is a tombstone. It lets the reclaimer
// pass over a key of one live version without reading the version, which
// would be a cache miss per key (oneLive).
const lastTombstone = 1 << 31

// hasSealed is a flag in tailCap's next bit: p points at a longList.
const hasSealed = 1 << 30

// tailCapacity is the tail chunk's capacity.
func (l revList) tailCapacity() uint32 { return l.tailCap &^ (lastTombstone | hasSealed) }

// parts returns the tail chunk's first version and the sealed chunks (nil
// if none).
func (l revList) parts() (tail *version, sealed *sealedChunks) {
	if l.tailCap&hasSealed != 0 {
		ll := (*longList)(l.p)
		return ll.tail, ll.sealed
	}
	return (*version)(l.p), nil
}

// sealed returns the sealed chunks, nil if the list has none.
func (l revList) sealed() *sealedChunks {
	_, s := l.parts()
	return s
}

// tailVersions returns the tail chunk as a slice.
func (l revList) tailVersions() []version {
	t, _ := l.parts()
	return unsafe.Slice(t, l.tailCapacity())[:l.tailLen]
}

// with returns the list made of tail chunk t, whose versions are final, and
// sealed chunks s (nil for none). It reuses l's longList when both parts
// are l's.
func (l revList) with(t []version, s *sealedChunks) revList {
	out := revList{tailLen: uint32(len(t)), tailCap: uint32(cap(t))}
	if len(t) > 0 && t[len(t)-1].tombstone() {
		out.tailCap |= lastTombstone
	}
	tail := unsafe.SliceData(t)
	if s == nil {
		out.p = unsafe.Pointer(tail)
		return out
	}
	out.tailCap |= hasSealed
	if oldTail, oldSealed := l.parts(); oldSealed == s && oldTail == tail {
		out.p = l.p
	} else {
		out.p = unsafe.Pointer(&longList{tail: tail, sealed: s})
	}
	return out
}

// setTail makes t, whose versions are final, the tail chunk.
func (l revList) setTail(t []version) revList {
	return l.with(t, l.sealed())
}

// oneLive reports, from the list's header alone, whether it holds exactly
// one version and that version is not a tombstone.
func (l revList) oneLive() bool {
	return l.tailLen == 1 && l.tailCap&(lastTombstone|hasSealed) == 0
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
// other copy, still reads as before. v.main must be above l's last.
func (l revList) appended(v version) revList {
	t := l.tailVersions()
	if len(t) < cap(t) {
		return l.setTail(append(t, v)) // past every copy's tail length
	}
	if 2*cap(t) < chunkSize {
		// Doubles, rounded up to the allocator's size class.
		return l.setTail(append(t, v))
	}
	if cap(t) < chunkSize {
		grown := make([]version, len(t), chunkSize)
		copy(grown, t)
		return l.setTail(append(grown, v))
	}
	// Seal the full tail. The append may write into chunks' spare capacity,
	// which no copy's length reaches.
	s := &sealedChunks{n: len(t)}
	if old := l.sealed(); old != nil {
		s.chunks, s.n = old.chunks, old.n+len(t)
	}
	s.chunks = append(s.chunks, sealedChunk{versions: t, valueBytes: valueBytes(t)})
	fresh := make([]version, 1, chunkSize)
	fresh[0] = v
	return l.with(fresh, s)
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
	if s := l.sealed(); s != nil {
		if n < s.n {
			c, o := s.locate(n)
			for _, ch := range s.chunks[:c] {
				dropped += ch.valueBytes
			}
			first := s.chunks[c]
			if o > 0 {
				gone := first.versions[:o]
				first.versions = clone(first.versions[o:])
				dropped += valueBytes(gone)
				first.valueBytes -= valueBytes(gone)
			}
			kept := make([]sealedChunk, 0, len(s.chunks)-c)
			kept = append(kept, first)
			kept = append(kept, s.chunks[c+1:]...)
			return l.with(l.tailVersions(), &sealedChunks{chunks: kept, n: s.n - n}), dropped
		}
		for _, ch := range s.chunks {
			dropped += ch.valueBytes
		}
		n -= s.n
		l = l.with(l.tailVersions(), nil)
		if n == 0 {
			return l, dropped // the tail is untouched: share it
		}
	}
	t := l.tailVersions()
	dropped += valueBytes(t[:n])
	if n == len(t) {
		return revList{}, dropped
	}
	kept := clone(t[n:])
	return l.setTail(kept[:len(kept):min(cap(kept), chunkSize)]), dropped
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
		n += int64(vs[i].vlen)
	}
	return n
}
