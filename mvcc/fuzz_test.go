package mvcc_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// FuzzRestore feeds arbitrary bytes to Restore: it must never panic, and
// whatever it accepts must serialize back to the same bytes.
func FuzzRestore(f *testing.F) {
	s := mvcc.New(mvcc.Config{})
	defer s.Close()
	f.Add(snapshotBytes(f, s))
	fill(f, s, 50)
	f.Add(snapshotBytes(f, s))
	<-must(s.Compact(s.Revision() - 10))
	f.Add(snapshotBytes(f, s))
	f.Add([]byte("KVSMVCC\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := mvcc.New(mvcc.Config{})
		defer r.Close()
		if err := r.Restore(bytes.NewReader(data)); err != nil {
			return
		}
		again := snapshotBytes(t, r)
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted snapshot re-serializes differently:\n%x\n%x", data, again)
		}
	})
}

// byteSource is a rand.Source that draws from the fuzzer's bytes, so that
// mutations of the input change the op sequence. Once they run out it
// continues from a fixed PCG (a source stuck at zero would make rand's
// rejection sampling loop forever).
type byteSource struct {
	data []byte
	rest rand.PCG
}

func (s *byteSource) Uint64() uint64 {
	if len(s.data) == 0 {
		return s.rest.Uint64()
	}
	var b [8]byte
	n := copy(b[:], s.data)
	s.data = s.data[n:]
	return binary.LittleEndian.Uint64(b[:]) ^ s.rest.Uint64()
}

// FuzzOps runs a fuzzer-chosen sequence of puts, deletes, txns, reads at old
// revisions, compactions, history reads and snapshot round trips against the
// reference model of model_test.go.
func FuzzOps(f *testing.F) {
	f.Add([]byte("seed"))
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 200, 150, 100}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{data: data, rest: *rand.NewPCG(1, 2)}
		s := mvcc.New(mvcc.Config{})
		defer s.Close()
		r := &modelRun{t: t, rng: rand.New(src), s: s, m: newModel()}
		for steps := 0; len(src.data) > 0 && steps < 500; steps++ {
			r.step()
		}
		r.checkHistory()
	})
}
