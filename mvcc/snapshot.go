package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"

	"github.com/tidwall/btree"
)

// Snapshot is a point-in-time, read-only view of a store, taken in O(1).
// Later writes and compactions of the store never show in it. It is safe for
// concurrent use and holds memory until it is no longer referenced.
type Snapshot struct {
	tree       *btree.BTreeG[keyItem]
	rev        int64
	compactRev int64
}

// Snapshot returns a view of the store as it is now.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock() // Copy changes the tree's copy-on-write identity
	defer s.mu.Unlock()
	return &Snapshot{tree: s.tree.Copy(), rev: s.rev, compactRev: s.compactRev}
}

// Revision returns the revision the snapshot was taken at.
func (sn *Snapshot) Revision() int64 { return sn.rev }

// CompactRevision returns the compact revision at the time of the
// snapshot, 0 if none.
func (sn *Snapshot) CompactRevision() int64 { return max(sn.compactRev, 0) }

// The snapshot format, version 1:
//
//	magic "KVSMVCC" and the format version byte
//	uvarint revision, varint compact revision (-1: never compacted)
//	per key, in key order: uvarint len(key)+1, key, uvarint version count,
//	  per version: uvarint main, sub, create, version, lease, len(value), value
//	uvarint 0 (end of keys)
//	CRC-32C (Castagnoli) of every preceding byte, 4 bytes little-endian
//
// Only the versions that compaction keeps are written, so a restored store
// is fully compacted whatever physical compaction had done.
const (
	snapshotMagic   = "KVSMVCC"
	snapshotVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteTo serializes the snapshot to w in the versioned, checksummed format
// that [Store.Restore] reads.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	e := encoder{w: w, buf: make([]byte, 0, 128<<10)}
	e.buf = append(e.buf, snapshotMagic...)
	e.buf = append(e.buf, snapshotVersion)
	e.buf = binary.AppendUvarint(e.buf, uint64(sn.rev))
	e.buf = binary.AppendVarint(e.buf, sn.compactRev)
	sn.tree.Scan(func(it keyItem) bool {
		from, to := it.compactIndex(sn.compactRev), it.versions.len()
		if from == to {
			return true
		}
		e.uvarint(uint64(len(it.key)) + 1)
		e.buf = append(e.buf, it.key...)
		e.uvarint(uint64(to - from))
		for v, f := range it.versions.records(from, to) {
			e.uvarint(uint64(v.main))
			e.uvarint(uint64(int64(v.sub)))
			e.uvarint(uint64(f.create))
			e.uvarint(uint64(f.ver))
			e.uvarint(uint64(v.lease))
			e.uvarint(uint64(len(v.value())))
			e.buf = append(e.buf, v.value()...)
			if !e.flushIfFull() {
				return false
			}
		}
		return true
	})
	e.uvarint(0)
	if e.err == nil {
		e.flush()
	}
	if e.err == nil {
		var sum [4]byte
		binary.LittleEndian.PutUint32(sum[:], e.crc)
		var n int
		n, e.err = w.Write(sum[:])
		e.n += int64(n)
	}
	return e.n, e.err
}

type encoder struct {
	w   io.Writer
	buf []byte
	crc uint32
	n   int64
	err error
}

func (e *encoder) uvarint(x uint64) { e.buf = binary.AppendUvarint(e.buf, x) }

func (e *encoder) flushIfFull() bool {
	if len(e.buf) >= 64<<10 {
		e.flush()
	}
	return e.err == nil
}

func (e *encoder) flush() {
	e.crc = crc32.Update(e.crc, castagnoli, e.buf)
	n, err := e.w.Write(e.buf)
	e.n += int64(n)
	e.err = err
	e.buf = e.buf[:0]
}

// Restore replaces the store's contents with a snapshot read from r. On any
// error — bad magic, unknown version, checksum mismatch, truncation, an
// inconsistent record — the store is left unchanged and the error wraps
// ErrCorruptSnapshot (or is r's own read error). The restored contents are
// fully compacted: the reclaiming of earlier compactions is abandoned and
// their channels are closed, while compactions after the Restore are
// reclaimed as usual.
func (s *Store) Restore(r io.Reader) error {
	st, err := decodeSnapshot(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.notifyCompacted(math.MaxInt64) // the new contents are fully compacted
	s.reset(st.tree, st.log, st.rev, st.compactRev, st.size, st.live)
	return nil
}

type decoded struct {
	tree            *btree.BTreeG[keyItem]
	log             revLog
	rev, compactRev int64
	size            int64
	live            int
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
}

func decodeSnapshot(r io.Reader) (*decoded, error) {
	d := decoder{r: r, buf: make([]byte, 0, 128<<10)}
	head := d.bytes(len(snapshotMagic) + 1)
	if d.err != nil {
		return nil, d.fail()
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, corrupt("bad magic")
	}
	if head[len(snapshotMagic)] != snapshotVersion {
		return nil, corrupt("unknown format version %d", head[len(snapshotMagic)])
	}
	st := &decoded{}
	// The keys arrive in order: pack the index as it is built, so a
	// restored store holds it in about half the memory Load alone leaves.
	index := newTreePacker()
	st.rev = int64(d.uvarint())
	st.compactRev = d.varint()
	if d.err == nil && (st.rev < 1 || st.compactRev < -1 || st.compactRev > st.rev) {
		return nil, corrupt("revision %d, compact revision %d", st.rev, st.compactRev)
	}
	type change struct {
		mod Revision
		key string
	}
	var changes []change
	prevKey := ""
	for d.err == nil {
		klen := d.uvarint()
		if klen == 0 || d.err != nil {
			break
		}
		key := string(d.bytes(int(min(klen-1, 1<<31))))
		if d.err == nil && (key == "" || (index.len() > 0 && key <= prevKey)) {
			return nil, corrupt("key %q out of order", key)
		}
		prevKey = key
		n := d.uvarint()
		if d.err == nil && (n == 0 || n > uint64(st.rev)) {
			return nil, corrupt("key %q: %d versions", key, n)
		}
		it := keyItem{key: key}
		for i := uint64(0); i < n && d.err == nil; i++ {
			main, sub := int64(d.uvarint()), d.uvarint()
			if sub > math.MaxInt32 {
				return nil, corrupt("key %q: sub revision %d", key, sub)
			}
			f := genFacts{create: int64(d.uvarint()), ver: int64(d.uvarint())}
			v := version{main: main, sub: int32(sub), lease: int64(d.uvarint())}
			vlen := d.uvarint()
			if vlen > 0 {
				if vlen > MaxValueSize {
					return nil, corrupt("key %q: value of %d bytes", key, vlen)
				}
				v.setValue(slices.Clone(d.bytes(int(vlen))))
			}
			if d.err != nil {
				break
			}
			if f.ver == 0 {
				if f.create != 0 || v.lease != 0 || vlen != 0 {
					return nil, corrupt("key %q: bad tombstone at revision %d", key, main)
				}
				v = tombstoneAt(v.main, v.sub)
			}
			if err := checkVersion(&it, &v, f, st.rev); err != nil {
				return nil, err
			}
			it.versions = it.versions.appended(v, f)
			st.size += int64(len(v.value())) + versionOverhead
			if v.main >= st.compactRev {
				if len(changes) == cap(changes) {
					// Double: append grows a large slice by a quarter,
					// copying it four times over on the way to a
					// million changes.
					changes = slices.Grow(changes, max(len(changes), 1024))
				}
				changes = append(changes, change{v.mod(), key})
			}
		}
		if d.err == nil {
			index.add(it)
			st.size += int64(len(key)) + keyOverhead
			if it.live() {
				st.live++
			}
		}
	}
	if d.err != nil {
		return nil, d.fail()
	}
	if err := d.checksum(); err != nil {
		return nil, err
	}
	st.tree = index.finish()
	slices.SortFunc(changes, func(a, b change) int {
		if a.mod.Less(b.mod) {
			return -1
		}
		if b.mod.Less(a.mod) {
			return 1
		}
		return 0
	})
	for i, c := range changes {
		if i > 0 && c.mod == changes[i-1].mod {
			return nil, corrupt("revision %d.%d written twice", c.mod.Main, c.mod.Sub)
		}
		// c.key is the string its item holds (no tree lookup needed to
		// share it).
		st.log.append(c.key, c.mod.Main)
	}
	return st, nil
}

// checkVersion rejects a version, with facts f, that would break the
// store's invariants: in a generation the create revision stays and the
// version number counts up from the first version kept, and one starts with
// version 1 at its create revision after a tombstone.
func checkVersion(it *keyItem, v *version, f genFacts, rev int64) error {
	bad := v.main < 1 || v.main > rev
	last := it.versions.last()
	switch {
	case last != nil && v.main <= last.main:
		bad = true
	case v.tombstone():
	case last == nil:
		// The first version kept: its generation may have begun earlier.
		bad = bad || f.create < 1 || f.create > v.main || f.ver < 1 ||
			(f.ver == 1) != (f.create == v.main) || f.ver-1 > v.main-f.create
	case last.tombstone():
		bad = bad || f != startFacts(v)
	default:
		bad = bad || f != it.versions.lastFacts().next()
	}
	if bad {
		return corrupt("key %q: bad version at revision %d", it.key, v.main)
	}
	return nil
}

// decoder reads the snapshot format through its own buffer, keeping the
// CRC of every byte consumed.
type decoder struct {
	r        io.Reader
	buf      []byte
	pos      int
	crc      uint32
	err      error
	eof      bool
	readFail error
}

// fill makes at least n unread bytes available, if the input has them.
func (d *decoder) fill(n int) bool {
	if len(d.buf)-d.pos >= n {
		return true
	}
	d.crc = crc32.Update(d.crc, castagnoli, d.buf[:d.pos])
	d.buf = append(d.buf[:0], d.buf[d.pos:]...)
	d.pos = 0
	for len(d.buf) < n && !d.eof {
		if cap(d.buf)-len(d.buf) < 32<<10 {
			d.buf = slices.Grow(d.buf, max(n-len(d.buf), 128<<10))
		}
		m, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+m]
		if errors.Is(err, io.EOF) {
			d.eof = true
		} else if err != nil {
			d.readFail, d.eof = err, true
		}
	}
	return len(d.buf) >= n
}

// bytes consumes n bytes. The result aliases the buffer until the next call.
// A length larger than the input fails as truncation without allocating it
// up front: the buffer grows only as data arrives.
func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.buf)-d.pos {
		// Grow in steps so a corrupt length cannot allocate gigabytes.
		for step := 1 << 20; len(d.buf)-d.pos < n; step *= 2 {
			want := min(n, len(d.buf)-d.pos+step)
			if !d.fill(want) {
				d.err = io.ErrUnexpectedEOF
				return nil
			}
		}
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	d.fill(binary.MaxVarintLen64)
	x, n := binary.Uvarint(d.buf[d.pos:])
	if n <= 0 {
		if len(d.buf)-d.pos < binary.MaxVarintLen64 && n == 0 {
			d.err = io.ErrUnexpectedEOF
		} else {
			d.err = corrupt("bad varint")
		}
		return 0
	}
	d.pos += n
	return x
}

func (d *decoder) varint() int64 {
	x := d.uvarint()
	return int64(x>>1) ^ -int64(x&1)
}

// checksum reads the trailer and compares it with the CRC of everything
// before it; nothing may follow.
func (d *decoder) checksum() error {
	if !d.fill(4) {
		return d.fail()
	}
	sum := crc32.Update(d.crc, castagnoli, d.buf[:d.pos])
	want := binary.LittleEndian.Uint32(d.buf[d.pos:])
	d.pos += 4
	if sum != want {
		return corrupt("checksum mismatch")
	}
	if d.fill(1) {
		return corrupt("trailing data")
	}
	if d.readFail != nil {
		return d.readFail
	}
	return nil
}

func (d *decoder) fail() error {
	if d.readFail != nil {
		return fmt.Errorf("mvcc: reading snapshot: %w", d.readFail)
	}
	if errors.Is(d.err, io.ErrUnexpectedEOF) || d.err == nil {
		return corrupt("truncated")
	}
	return d.err
}
