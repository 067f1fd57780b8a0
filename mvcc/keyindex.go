package mvcc

import (
	"math"
	"unsafe"
)

// version is one stored version of a key: 32 bytes, the largest per-key
// cost after the key and value. Its create revision and version number are
// not in it: they follow from its place in its generation (revList.facts),
// as etcd's keyIndex holds them per generation. A tombstone (the delete that
// ends a generation) has no value and vlen tombstoneLen.
type version struct {
	// val and vlen hold the value bytes; val is nil for an empty value.
	val   *byte
	vlen  uint32
	sub   int32
	main  int64
	lease int64
}

// tombstoneLen is a tombstone's vlen; its val is nil, so no value has it.
const tombstoneLen = math.MaxUint32

// tombstoneAt returns the tombstone of a delete at revision main.sub.
func tombstoneAt(main int64, sub int32) version {
	return version{main: main, sub: sub, vlen: tombstoneLen}
}

// fullVersion is a stored version with its generation's facts: what a
// KeyValue reports.
type fullVersion struct {
	*version
	genFacts
}

func (v *version) value() []byte {
	if v.val == nil {
		return nil
	}
	return unsafe.Slice(v.val, v.vlen)
}

func (v *version) setValue(b []byte) {
	if len(b) == 0 {
		v.val, v.vlen = nil, 0
		return
	}
	v.val, v.vlen = unsafe.SliceData(b), uint32(len(b))
}

func (v *version) mod() Revision { return Revision{Main: v.main, Sub: int64(v.sub)} }

func (v *version) tombstone() bool { return v.val == nil && v.vlen == tombstoneLen }

// keyItem is a key's entry in the index: its versions in revision order,
// across generations, each generation ending in a tombstone except possibly
// the last.
//
// Items are immutable once in a tree: a change builds a new item and Sets it.
// The version list shares its chunks with older items and snapshots, but a
// change never writes where an existing copy can see (see revList). That
// keeps Snapshot's copy-on-write tree point-in-time without copying every
// history, and keeps a put O(1) however many versions the key has.
//
// Worked example (etcd's): put a@2, put a@3, delete a@4, put a@6 gives
// versions [2 (ver 1), 3 (ver 2), 4 (tombstone), 6 (ver 1)]. Compact(5)
// keeps only [6]: the tombstone at 4 is the newest version at or below 5 and
// ends its generation. Compact(4) keeps [4, 6]: a tombstone at exactly the
// compact revision stays until a later compaction. Compact(3) keeps [3, 4, 6].
type keyItem struct {
	key      string
	versions revList
}

func lessItem(a, b keyItem) bool { return a.key < b.key }

// probe returns an item usable only as a search key for k; it aliases k's
// bytes and must not be stored.
func probe(k []byte) keyItem {
	return keyItem{key: aliasString(k)}
}

// aliasString views b as a string without copying; the string must not
// outlive b's request or be stored.
func aliasString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// keyBytes returns the item's key as a byte slice aliasing the immutable
// string: callers must not modify it.
func (it *keyItem) keyBytes() []byte {
	return unsafe.Slice(unsafe.StringData(it.key), len(it.key))
}

// at returns the index of the newest version with main <= rev, or -1.
func (it *keyItem) at(rev int64) int {
	return it.versions.search(rev) - 1
}

// visible returns the version a read at rev sees; false if the key did not
// exist then.
func (it *keyItem) visible(rev int64) (fullVersion, bool) {
	i := it.at(rev)
	if i < 0 {
		return fullVersion{}, false
	}
	if v := it.versions.at(i); !v.tombstone() {
		return fullVersion{v, it.versions.facts(i)}, true
	}
	return fullVersion{}, false
}

// latest returns the key's current version; false if it is deleted.
func (it *keyItem) latest() (fullVersion, bool) {
	if v := it.versions.last(); v != nil && !v.tombstone() {
		return fullVersion{v, it.versions.lastFacts()}, true
	}
	return fullVersion{}, false
}

// live reports whether the key has a current version.
func (it *keyItem) live() bool {
	v := it.versions.last()
	return v != nil && !v.tombstone()
}

// find returns the index of the version written at main revision rev, or -1.
func (it *keyItem) find(rev int64) int {
	if i := it.at(rev); i >= 0 && it.versions.at(i).main == rev {
		return i
	}
	return -1
}

// kv renders version v of the item as a KeyValue.
func (it *keyItem) kv(v fullVersion) KeyValue {
	return KeyValue{
		Key:            it.keyBytes(),
		Value:          v.value(),
		CreateRevision: v.create,
		ModRevision:    v.main,
		Version:        v.ver,
		Lease:          v.lease,
	}
}

// compactIndex returns how many leading versions compaction at rev drops:
// every version at or below rev except the newest one, and that one too if it
// is a tombstone below rev. A tombstone at exactly rev stays, as in etcd
// v3.7, so that a watch from the compact revision still sees that delete; the
// next compaction removes it.
func (it *keyItem) compactIndex(rev int64) int {
	if it.versions.oneLive() {
		// Visible at rev or not yet written: either way it stays.
		return 0
	}
	i := it.at(rev)
	if i < 0 {
		return 0
	}
	if v := it.versions.at(i); v.tombstone() && v.main < rev {
		return i + 1
	}
	return i
}

// withVersion returns a new item with v, whose facts are f, appended.
func (it keyItem) withVersion(v version, f genFacts) keyItem {
	it.versions = it.versions.appended(v, f)
	return it
}

// versionOverhead and keyOverhead are the bytes Size charges beyond key and
// value bytes: the version record and the index entry with its history log
// entry.
const (
	versionOverhead = int64(unsafe.Sizeof(version{})) + int64(unsafe.Sizeof(logEntry{}))
	keyOverhead     = int64(unsafe.Sizeof(keyItem{}))
)
