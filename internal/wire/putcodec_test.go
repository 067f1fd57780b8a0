package wire

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/kvstore/kvstore/mvcc"
)

// msgpackBody is the body go-msgpack writes for c, what EncodeCommand
// wrote for every command before the Put codec.
func msgpackBody(t testing.TB, c *Command) []byte {
	t.Helper()
	var body []byte
	if err := codec.NewEncoderBytes(&body, handle).Encode(c); err != nil {
		t.Fatal(err)
	}
	return body
}

// msgpackDecode decodes body with go-msgpack, as DecodeCommand does for
// every entry the Put codec declines.
func msgpackDecode(body []byte) (*Command, error) {
	var c Command
	if err := codec.NewDecoderBytes(body, handle).Decode(&c); err != nil {
		return nil, err
	}
	return &c, c.check()
}

// samplePuts are Put commands at every boundary of the msgpack forms the
// Put codec writes: string lengths, integer widths, each optional field.
func samplePuts() []*Command {
	lengths := []int{1, 31, 32, 255, 256, 65535, 65536, 70000}
	ints := []int64{1, -1, -32, -33, 127, 128, -128, -129, 32767, 32768, -32768, -32769,
		math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1, math.MaxInt64, math.MinInt64}
	uints := []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}
	rng := rand.New(rand.NewPCG(1, 2))
	bytesOf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	var out []*Command
	for _, n := range lengths {
		out = append(out, &Command{Kind: CmdPut, Put: &Put{Key: bytesOf(n)}})
		out = append(out, &Command{Kind: CmdPut, Put: &Put{Key: []byte("k"), Value: bytesOf(n)}})
	}
	for _, v := range ints {
		out = append(out, &Command{Kind: CmdPut, Put: &Put{Key: []byte("k"), Lease: v}})
	}
	for _, v := range uints {
		out = append(out, &Command{Kind: CmdPut, Put: &Put{Key: []byte("k"), Value: []byte("v")}, AuthRevision: v})
	}
	for mask := range 16 {
		out = append(out, &Command{Kind: CmdPut, AuthRevision: uint64(mask), Put: &Put{Key: bytesOf(19), Value: bytesOf(256),
			IgnoreLease: mask&1 != 0, IgnoreValue: mask&2 != 0, PrevKV: mask&4 != 0, Lease: int64(mask&8) * 1e9}})
	}
	return out
}

// TestPutCodecMatchesMsgpack: for every sample Put, EncodeCommand writes
// the bytes go-msgpack writes, and the Put codec reads them back as
// go-msgpack does. A divergence would make members of different builds
// disagree about a log entry.
func TestPutCodecMatchesMsgpack(t *testing.T) {
	for i, c := range samplePuts() {
		if !putEncodable(c) {
			t.Fatalf("sample %d: the Put codec declines it", i)
		}
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		want := msgpackBody(t, c)
		if body := data[1 : len(data)-4]; !bytes.Equal(body, want) {
			t.Fatalf("sample %d (%+v): the Put codec writes\n%x\ngo-msgpack writes\n%x", i, c.Put, body, want)
		}
		fast, ok := readPutCommand(want)
		if !ok {
			t.Fatalf("sample %d: the Put codec declines go-msgpack's bytes %x", i, want)
		}
		slow, err := msgpackDecode(want)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(fast, c) {
			t.Fatalf("sample %d: read as\n%+v %+v\ngo-msgpack reads\n%+v %+v", i, fast, fast.Put, slow, slow.Put)
		}
	}
}

// TestPutCodecDeclinesOtherForms: bytes that go-msgpack reads but the Put
// codec did not write (a longer integer, another key order, an empty key)
// go to go-msgpack, which decides what they are.
func TestPutCodecDeclinesOtherForms(t *testing.T) {
	for name, body := range map[string][]byte{
		"kind as uint8":        {0x82, 0xa1, 'k', mpUint8, 0x01, 0xa1, 'p', 0x81, 0xa1, 'k', 0xa1, 'x'},
		"fields swapped":       {0x82, 0xa1, 'p', 0x81, 0xa1, 'k', 0xa1, 'x', 0xa1, 'k', 0x01},
		"empty key":            {0x82, 0xa1, 'k', 0x01, 0xa1, 'p', 0x81, 0xa1, 'k', 0xa0},
		"nil key":              {0x82, 0xa1, 'k', 0x01, 0xa1, 'p', 0x81, 0xa1, 'k', 0xc0},
		"lease as int8":        {0x82, 0xa1, 'k', 0x01, 0xa1, 'p', 0x82, 0xa1, 'k', 0xa1, 'x', 0xa1, 'l', mpInt8, 0x05},
		"prev kv false":        {0x82, 0xa1, 'k', 0x01, 0xa1, 'p', 0x82, 0xa1, 'k', 0xa1, 'x', 0xa2, 'p', 'k', 0xc2},
		"key as str16":         {0x82, 0xa1, 'k', 0x01, 0xa1, 'p', 0x81, 0xa1, 'k', mpStr16, 0x00, 0x01, 'x'},
		"auth revision zero":   {0x83, 0xa2, 'a', 'r', 0x00, 0xa1, 'k', 0x01, 0xa1, 'p', 0x81, 0xa1, 'k', 0xa1, 'x'},
		"another kind":         {0x82, 0xa1, 'k', 0x02, 0xa1, 'p', 0x81, 0xa1, 'k', 0xa1, 'x'},
		"trailing byte":        {0x82, 0xa1, 'k', 0x01, 0xa1, 'p', 0x81, 0xa1, 'k', 0xa1, 'x', 0x00},
		"field count too high": {0x82, 0xa1, 'k', 0x01, 0xa1, 'p', 0x82, 0xa1, 'k', 0xa1, 'x'},
	} {
		if c, ok := readPutCommand(body); ok {
			t.Errorf("%s: the Put codec read %x as %+v", name, body, c.Put)
		}
	}
}

// FuzzPutCodec: whatever the Put codec accepts, go-msgpack reads as the
// same valid command, so the choice of decoder never changes a result.
func FuzzPutCodec(f *testing.F) {
	for _, c := range samplePuts()[:20] {
		f.Add(msgpackBody(f, c))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := readPutCommand(body)
		if !ok {
			return
		}
		slow, err := msgpackDecode(body)
		if err != nil || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("the Put codec reads %x as %+v %+v; go-msgpack as %+v, %v", body, fast, fast.Put, slow, err)
		}
		if again := appendPutCommand(nil, fast); !bytes.Equal(again, body) {
			t.Fatalf("the Put codec read %x, which it writes as %x", body, again)
		}
	})
}

// TestPutCodecAllocations: a put's entry is one allocation to encode and
// one to decode (the Command with its Put; key and value share the entry).
func TestPutCodecAllocations(t *testing.T) {
	c := &Command{Kind: CmdPut, Put: &Put{Key: []byte("key-0000000000000001"), Value: make([]byte, 256), Lease: 7}}
	data, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = EncodeCommand(c) }); n > 1 {
		t.Errorf("EncodeCommand of a put: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeCommand(data) }); n > 1 {
		t.Errorf("DecodeCommand of a put: %v allocations, want 1", n)
	}
}

// TestPutCommand: PutCommand is the CmdPut of PutOf, in one allocation.
func TestPutCommand(t *testing.T) {
	r := &mvcc.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 3, PrevKV: true, IgnoreLease: true}
	if got, want := PutCommand(r), (&Command{Kind: CmdPut, Put: PutOf(r)}); !reflect.DeepEqual(got, want) {
		t.Fatalf("PutCommand: %+v %+v, want %+v %+v", got, got.Put, want, want.Put)
	}
	var sink *Command
	if n := testing.AllocsPerRun(100, func() { sink = PutCommand(r) }); n != 1 {
		t.Errorf("PutCommand: %v allocations, want 1", n)
	}
	_ = sink
}
