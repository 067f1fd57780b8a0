package mvcc

import (
	"fmt"
	"math"
	"testing"
	"unsafe"
)

// The change log gives back every key and revision it was given, across
// chunks, with revision gaps past what a chunk's 32-bit offsets hold (a
// restored log holds only surviving versions), and after trims.
func TestRevLogRoundTrip(t *testing.T) {
	type change struct {
		key  string
		main int64
	}
	var want []change
	var l revLog
	main := int64(1)
	for i := range 3*logChunkSize + 17 {
		switch {
		case i == 5, i == logChunkSize+100:
			main += math.MaxUint32 + 2 // a gap no 32-bit offset from the chunk's base holds
		case i%7 == 0:
			// several changes at one revision, as a txn makes
		default:
			main += int64(i % 5)
		}
		c := change{key: fmt.Sprintf("key-%06d", i), main: main}
		want = append(want, c)
		l.append(c.key, c.main)
	}
	check := func(what string) {
		t.Helper()
		if l.n != len(want) {
			t.Fatalf("%s: %d entries, want %d", what, l.n, len(want))
		}
		for i, w := range want {
			if key, main := l.at(i); key != w.key || main != w.main {
				t.Fatalf("%s: entry %d = %q at %d, want %q at %d", what, i, key, main, w.key, w.main)
			}
			if i == 0 || want[i-1].main < w.main {
				if got := l.search(w.main); got != i {
					t.Fatalf("%s: search(%d) = %d, want %d", what, w.main, got, i)
				}
			}
		}
	}
	check("appended")
	if l.chunks[0].wide == nil || l.chunks[1].wide == nil || l.chunks[2].wide != nil {
		t.Fatalf("wide revisions in chunks: %v %v %v, want the first two only", l.chunks[0].wide != nil, l.chunks[1].wide != nil, l.chunks[2].wide != nil)
	}
	for _, cut := range []int{3, logChunkSize + 47, logChunkSize - 5} { // each relative to what is left
		rev := want[cut].main
		for cut > 0 && want[cut-1].main == rev {
			cut--
		}
		l.trimBefore(rev)
		want = want[cut:]
		check(fmt.Sprintf("trimmed before %d", rev))
	}
}

// An entry is 16 bytes: the point of the chunk's base.
func TestRevLogEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(logEntry{}); n != 16 {
		t.Fatalf("logEntry is %d bytes, want 16", n)
	}
}
