package mvcc

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
	"unsafe"
)

// checkInvariants reports a revList whose layout breaks what at, locate and
// the bounded-copy guarantee rely on.
func (l revList) checkInvariants() error {
	limit := uint32(chunkSize)
	if l.meta&headed != 0 {
		limit = headedChunkSize
	}
	if c := l.tailCapacity(); l.tailLen > c || c > limit {
		return fmt.Errorf("tail length %d, capacity %d (headed %v)", l.tailLen, c, l.meta&headed != 0)
	}
	if l.meta&headed != 0 && l.meta&hasLong != 0 {
		return fmt.Errorf("headed tail with a longList")
	}
	if dead := l.tailLen > 0 && l.last().tombstone(); dead != (l.meta&lastTombstone != 0) {
		return fmt.Errorf("newest version a tombstone: %v, flag says %v", dead, !dead)
	}
	if got, want := l.tailLastTomb(), lastTombIn(l.tailVersions()); got != want {
		return fmt.Errorf("tail's last tombstone at %d, recorded %d", want, got)
	}
	if _, ll := l.parts(); ll == nil && l.tailLen > 0 && (l.meta&headed != 0) == (l.tailHead() == startFacts(l.at(0))) {
		return fmt.Errorf("headed %v, first version's facts %+v", l.meta&headed != 0, l.tailHead())
	}
	if want := l.len() == 1 && !l.last().tombstone(); l.oneLive() != want {
		return fmt.Errorf("oneLive %v with %d versions", l.oneLive(), l.len())
	}
	s := l.sealed()
	if s == nil {
		return nil
	}
	if l.tailLen == 0 || len(s.chunks) == 0 {
		return fmt.Errorf("sealed chunks %d with tail length %d", len(s.chunks), l.tailLen)
	}
	n := 0
	for i, ch := range s.chunks {
		if len(ch.versions) == 0 || len(ch.versions) > chunkSize || (i > 0 && len(ch.versions) != chunkSize) {
			return fmt.Errorf("sealed chunk %d of %d holds %d versions", i, len(s.chunks), len(ch.versions))
		}
		if ch.valueBytes != valueBytes(ch.versions) {
			return fmt.Errorf("sealed chunk %d: valueBytes %d, holds %d", i, ch.valueBytes, valueBytes(ch.versions))
		}
		if ch.lastTomb != lastTombIn(ch.versions) {
			return fmt.Errorf("sealed chunk %d: last tombstone at %d, recorded %d", i, lastTombIn(ch.versions), ch.lastTomb)
		}
		n += len(ch.versions)
	}
	if n != s.n {
		return fmt.Errorf("sealed count %d, chunks hold %d", s.n, n)
	}
	return nil
}

// revListRun drives a revList and a plain slice (the model) through the
// same operations and compares them after each one. Copies taken along the
// way (as snapshots take them) must keep reading as they did.
type revListRun struct {
	t     *testing.T
	list  revList
	model []modelVersion
	main  int64
	saved []savedList
}

// modelVersion is a version as the model holds it: with its facts.
type modelVersion struct {
	v version
	f genFacts
}

type savedList struct {
	list  revList
	model []modelVersion
}

func records(m []modelVersion) []version {
	vs := make([]version, len(m))
	for i := range m {
		vs[i] = m[i].v
	}
	return vs
}

// apply runs one operation chosen by kind and arg.
func (r *revListRun) apply(kind, arg byte) {
	switch kind % 9 {
	case 0, 1, 2, 3:
		r.appendN(int(arg) + 1)
	case 4:
		r.appendN(int(arg) * 8) // long histories quickly
	case 5, 6:
		n := len(r.model) * int(arg) / 255
		got, dropped := r.list.dropFront(n)
		want := valueBytes(records(r.model[:n]))
		if dropped != want {
			r.t.Fatalf("dropFront(%d) of %d: dropped %d value bytes, want %d", n, len(r.model), dropped, want)
		}
		// Survivors of a cut chunk are copied, so that the dropped versions
		// (and their values) are not kept alive; whole chunks are shared.
		if n > 0 && n < len(r.model) {
			shared := got.at(0) == r.list.at(n)
			s := r.list.sealed()
			atChunkStart := s != nil && n <= s.n
			if atChunkStart && n < s.n {
				_, offset := s.locate(n)
				atChunkStart = offset == 0
			}
			if shared != atChunkStart {
				r.t.Fatalf("dropFront(%d) of %d: survivors shared %v, cut at a chunk start %v", n, len(r.model), shared, atChunkStart)
			}
		}
		r.list, r.model = got, slices.Clone(r.model[n:])
	case 7:
		r.saved = append(r.saved, savedList{r.list, slices.Clone(r.model)})
		if len(r.saved) > 8 {
			r.saved = r.saved[1:]
		}
	case 8:
		if last := r.list.last(); last != nil && !last.tombstone() {
			v := *last
			v.setValue(fmt.Appendf(nil, "overwritten %d", arg))
			r.list = r.list.replacedLast(v)
			r.model = slices.Clone(r.model)
			r.model[len(r.model)-1].v = v
		}
	}
	r.compare(r.list, r.model, int(arg))
}

func (r *revListRun) appendN(n int) {
	for range n {
		r.main += 1 + r.main%3 // gaps, so that searches between revisions matter
		v := version{main: r.main, sub: int32(r.main % 5)}
		if r.main%7 == 0 || r.main%97 == 1 {
			v = tombstoneAt(v.main, v.sub)
		} else {
			v.setValue(fmt.Appendf(nil, "v%d", r.main%100))
		}
		f := startFacts(&v)
		switch last := len(r.model) - 1; {
		case v.tombstone():
		case last < 0 && r.main%2 == 0 && r.main > 4:
			// A restored key whose generation began before what was kept.
			f = genFacts{create: r.main - 4, ver: 3}
		case last >= 0 && !r.model[last].v.tombstone():
			f = r.model[last].f.next()
		}
		r.list = r.list.appended(v, f)
		r.model = append(r.model, modelVersion{v, f})
	}
}

// compare checks l against want: every position, the last version,
// searches at, between and around every revision, and runs of segments
// (seeded by pick).
func (r *revListRun) compare(l revList, model []modelVersion, pick int) {
	r.t.Helper()
	if err := l.checkInvariants(); err != nil {
		r.t.Fatal(err)
	}
	want := records(model)
	if l.len() != len(want) {
		r.t.Fatalf("len %d, want %d", l.len(), len(want))
	}
	for i := range want {
		if *l.at(i) != want[i] {
			r.t.Fatalf("at(%d) = %+v, want %+v", i, *l.at(i), want[i])
		}
		if f := l.facts(i); f != model[i].f {
			r.t.Fatalf("facts(%d) of %d = %+v, want %+v", i, len(want), f, model[i].f)
		}
	}
	if len(want) == 0 {
		if l.last() != nil {
			r.t.Fatalf("last of an empty list = %+v", *l.last())
		}
	} else if *l.last() != want[len(want)-1] {
		r.t.Fatalf("last = %+v, want %+v", *l.last(), want[len(want)-1])
	}
	search := func(rev int64) {
		wantN := sort.Search(len(want), func(i int) bool { return want[i].main > rev })
		if got := l.search(rev); got != wantN {
			r.t.Fatalf("search(%d) = %d, want %d (of %d)", rev, got, wantN, len(want))
		}
	}
	search(0)
	search(r.main + 1)
	// Every revision near the chunk boundaries, a sample elsewhere.
	for i := range want {
		if o := i % chunkSize; o < 2 || o > chunkSize-3 || i%17 == pick%17 {
			search(want[i].main - 1)
			search(want[i].main)
		}
	}
	n := len(want)
	from, to := pick*7%(n+1), pick*13%(n+1)
	from, to = min(from, to), max(from, to)
	for _, span := range [][2]int{{0, n}, {from, to}, {from, n}, {to, to}} {
		var got []version
		for run := range l.segments(span[0], span[1]) {
			got = append(got, run...)
		}
		if !slices.Equal(got, want[span[0]:span[1]]) {
			r.t.Fatalf("segments(%d, %d) of %d: %d versions differ from the model", span[0], span[1], n, len(got))
		}
		var full []modelVersion
		for v, f := range l.records(span[0], span[1]) {
			full = append(full, modelVersion{*v, f})
		}
		if !slices.Equal(full, model[span[0]:span[1]]) {
			r.t.Fatalf("records(%d, %d) of %d: %d versions differ from the model", span[0], span[1], n, len(full))
		}
	}
	for run := range l.segments(0, n) {
		if len(run) == 0 || !slices.Equal(run, want[:len(run)]) {
			r.t.Fatalf("first run of segments(0, %d): %d versions", n, len(run))
		}
		break // a stopped iteration must not be resumed
	}
}

func (r *revListRun) checkSaved() {
	r.t.Helper()
	for _, s := range r.saved {
		r.compare(s.list, s.model, 0)
	}
}

// runRevListOps interprets ops as (kind, arg) pairs.
func runRevListOps(t *testing.T, ops []byte) {
	r := &revListRun{t: t}
	for i := 0; i+1 < len(ops); i += 2 {
		r.apply(ops[i], ops[i+1])
		if i%64 == 0 {
			r.checkSaved()
		}
	}
	r.checkSaved()
}

func TestRevListAgainstSlice(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 11))
			ops := make([]byte, 2*150)
			for i := range ops {
				ops[i] = byte(rng.UintN(256))
			}
			runRevListOps(t, ops)
		})
	}
}

// FuzzRevList runs fuzzer-chosen appends, front drops and copies against the
// slice model.
func FuzzRevList(f *testing.F) {
	f.Add([]byte{4, 200, 5, 100, 7, 0, 0, 3, 4, 255, 6, 254, 1, 1})
	f.Add([]byte{4, 64, 7, 0, 5, 128, 4, 64, 7, 0, 6, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		runRevListOps(t, ops[:min(len(ops), 400)])
	})
}

// TestRevListSmallKeysStaySmall pins the common case: a key with a few
// versions costs what a slice of them would, and the list header is a
// pointer and two uint32s (16 bytes on 64-bit platforms, where a slice
// header is 24).
func TestRevListSmallKeysStaySmall(t *testing.T) {
	if got, want := unsafe.Sizeof(revList{}), unsafe.Sizeof(unsafe.Pointer(nil))+8; got != want {
		t.Fatalf("revList header is %d bytes, want %d", got, want)
	}
	var l revList
	for n := 1; n <= chunkSize; n++ {
		l = l.appended(version{main: int64(n)}, genFacts{create: 1, ver: int64(n)})
		// Doubling plus the allocator's rounding (under 12.5%).
		if c := int(l.tailCapacity()); l.sealed() != nil || c < n || c > max(1, 9*n/4) {
			t.Fatalf("after %d appends: capacity %d, sealed %v", n, c, l.sealed() != nil)
		}
	}
	for _, c := range []struct {
		name  string
		facts genFacts
		bytes uint64
	}{
		{"a new key", genFacts{create: 9, ver: 1}, 32},
		{"a compacted key, its generation begun before", genFacts{create: 2, ver: 5}, 48},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		allocs := testing.AllocsPerRun(100, func() {
			var one revList
			one = one.appended(version{main: 9}, c.facts)
			if one.len() != 1 || one.facts(0) != c.facts {
				t.Fatal("lost the version or its facts")
			}
		})
		runtime.ReadMemStats(&after)
		if allocs != 1 {
			t.Fatalf("%s: a one-version list makes %v allocations, want 1", c.name, allocs)
		}
		// 101 runs: AllocsPerRun's warm-up and its 100.
		if per := (after.TotalAlloc - before.TotalAlloc) / 101; per != c.bytes {
			t.Fatalf("%s: a one-version list allocates %d bytes, want %d", c.name, per, c.bytes)
		}
	}
}

// TestVersionLayout pins what headOf relies on: a record is 32 bytes and
// its last 16 are two int64 fields, so the 16 bytes in front of a headed
// chunk's first record never hold a pointer.
func TestVersionLayout(t *testing.T) {
	var v version
	if unsafe.Sizeof(v) != 32 || unsafe.Offsetof(v.main) != 16 || unsafe.Offsetof(v.lease) != 24 ||
		unsafe.Sizeof(v.main) != 8 || unsafe.Sizeof(v.lease) != 8 || unsafe.Sizeof(genFacts{}) != 16 {
		t.Fatalf("version is %d bytes, main at %d, lease at %d", unsafe.Sizeof(v), unsafe.Offsetof(v.main), unsafe.Offsetof(v.lease))
	}
	head := genFacts{create: 3, ver: 7}
	for _, c := range []int{1, 2, 5, headedChunkSize} {
		vs := append(newChunk(c, &head), version{main: 8})
		if got := *headOf(&vs[0]); got != head || cap(vs) != c {
			t.Fatalf("chunk of %d: head %+v, capacity %d", c, got, cap(vs))
		}
	}
}

// TestPutAllocationIsProportional appends 200,000 versions to one key, as
// puts do, and requires the bytes allocated to stay within 10% of the
// version records themselves: a list that regrows by copying allocates
// several times that, and its largest copies are the stalls this structure
// exists to avoid.
func TestPutAllocationIsProportional(t *testing.T) {
	const n = 200_000
	it := keyItem{key: "hot"}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		it = it.withVersion(version{main: int64(i + 1)}, genFacts{create: 1, ver: int64(i + 1)})
	}
	runtime.ReadMemStats(&after)
	records := float64(n) * float64(unsafe.Sizeof(version{}))
	if got := float64(after.TotalAlloc - before.TotalAlloc); got > 1.1*records {
		t.Fatalf("appending %d versions allocated %.0f bytes, %.2fx the %.0f bytes of records", n, got, got/records, records)
	}
	if v, _ := it.latest(); it.versions.len() != n || v.ver != n {
		t.Fatalf("len %d", it.versions.len())
	}
}
