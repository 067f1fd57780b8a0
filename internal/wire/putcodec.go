package wire

import (
	"encoding/binary"
	"math"

	"github.com/kvstore/kvstore/mvcc"
)

// A hand-written codec for the most frequent log entry, a Put command,
// beside the reflective msgpack codec: every write is encoded once by its
// proposer and decoded by every member, and go-msgpack's encoder and
// decoder setup, reflection and per-field copies were a fifth of a put's
// allocations.
//
// It writes exactly the bytes go-msgpack writes for the same Command (the
// golden test and TestPutCodecMatchesMsgpack pin that): a map of the
// non-empty fields under their codec tags in the order msgpack emits them
// ("ar", "k", "p"; in the Put "il", "iv", "k", "l", "pk", "v"), byte
// slices as legacy raw strings, integers in their shortest msgpack form.
// Reading accepts only that canonical form, and gives the same Command
// msgpack would; anything else (another key order, a longer integer form,
// an empty key, nil, an unknown field) makes it decline, and the entry goes
// to the msgpack decoder, so every replica still decodes the same bytes the
// same way whichever path reads them.

// PutCommand returns the command that proposes r: PutOf(r) in a CmdPut,
// the two in one allocation.
func PutCommand(r *mvcc.PutRequest) *Command {
	both := &struct {
		c Command
		p Put
	}{}
	both.p = *PutOf(r)
	both.c = Command{Kind: CmdPut, Put: &both.p}
	return &both.c
}

// msgpack format bytes the Put codec uses.
const (
	mpFixMapMin = 0x80
	mpFixStrMin = 0xa0
	mpFixStrMax = 0xbf
	mpTrue      = 0xc3
	mpUint8     = 0xcc
	mpUint16    = 0xcd
	mpUint32    = 0xce
	mpUint64    = 0xcf
	mpInt8      = 0xd0
	mpInt16     = 0xd1
	mpInt32     = 0xd2
	mpInt64     = 0xd3
	mpStr16     = 0xda
	mpStr32     = 0xdb
)

// putEncodable reports whether the Put codec can write c: a Put command
// with a non-empty key and nothing else set.
func putEncodable(c *Command) bool {
	return c.Kind == CmdPut && c.Put != nil && len(c.Put.Key) > 0 &&
		c.Delete == nil && c.Txn == nil && c.Revision == 0 && c.LeaseID == 0 && c.TTL == 0 &&
		c.Checkpoints == nil && c.Alarm == nil && c.MemberAttrs == nil && c.Auth == nil
}

// appendPutCommand appends the msgpack body of c, which putEncodable
// accepted.
func appendPutCommand(b []byte, c *Command) []byte {
	fields := 2
	if c.AuthRevision != 0 {
		fields++
	}
	b = append(b, mpFixMapMin|byte(fields))
	if c.AuthRevision != 0 {
		b = appendUint(appendRaw(b, "ar"), c.AuthRevision)
	}
	b = appendUint(appendRaw(b, "k"), uint64(c.Kind))
	b = appendRaw(b, "p")
	p := c.Put
	fields = 1
	for _, set := range []bool{p.IgnoreLease, p.IgnoreValue, p.Lease != 0, p.PrevKV, len(p.Value) > 0} {
		if set {
			fields++
		}
	}
	b = append(b, mpFixMapMin|byte(fields))
	if p.IgnoreLease {
		b = append(appendRaw(b, "il"), mpTrue)
	}
	if p.IgnoreValue {
		b = append(appendRaw(b, "iv"), mpTrue)
	}
	b = appendRaw(appendRaw(b, "k"), p.Key)
	if p.Lease != 0 {
		b = appendInt(appendRaw(b, "l"), p.Lease)
	}
	if p.PrevKV {
		b = append(appendRaw(b, "pk"), mpTrue)
	}
	if len(p.Value) > 0 {
		b = appendRaw(appendRaw(b, "v"), p.Value)
	}
	return b
}

// putBodySize bounds the bytes appendPutCommand writes for c.
func putBodySize(c *Command) int {
	return 64 + len(c.Put.Key) + len(c.Put.Value)
}

// appendRaw appends s as a msgpack legacy raw string, as go-msgpack writes
// strings and byte slices without WriteExt.
func appendRaw[T ~string | ~[]byte](b []byte, s T) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, mpFixStrMin|byte(n))
	case n < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= math.MaxInt8:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v > math.MaxInt8 && v <= math.MaxInt16, v < math.MinInt8 && v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, mpInt16), uint16(v))
	case v > math.MaxInt16 && v <= math.MaxInt32, v < math.MinInt16 && v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	case v > math.MaxInt32, v < math.MinInt32:
		return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
	case v >= -32:
		return append(b, byte(v))
	}
	return append(b, mpInt8, byte(v))
}

// putReader reads the canonical form appendPutCommand writes. Any
// deviation sets ok to false, and every later read returns zero values.
type putReader struct {
	b  []byte
	ok bool
}

func (r *putReader) byte() byte {
	if !r.ok || len(r.b) == 0 {
		r.ok = false
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *putReader) take(n int) []byte {
	if !r.ok || n > len(r.b) {
		r.ok = false
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

// be reads an n-byte big-endian integer (n is 1, 2, 4 or 8).
func (r *putReader) be(n int) uint64 {
	b := r.take(n)
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// raw reads a raw string in its shortest form and returns it, sharing the
// reader's memory.
func (r *putReader) raw() []byte {
	c := r.byte()
	n := 0
	switch {
	case c >= mpFixStrMin && c <= mpFixStrMax:
		n = int(c - mpFixStrMin)
	case c == mpStr16:
		if n = int(r.be(2)); n < 32 {
			r.ok = false
		}
	case c == mpStr32:
		if n = int(r.be(4)); n < 1<<16 {
			r.ok = false
		}
	default:
		r.ok = false
	}
	return r.take(n)
}

// key reads a map key and reports whether it is want.
func (r *putReader) key(want string) bool {
	if !r.ok || len(r.b) < 1+len(want) || r.b[0] != mpFixStrMin|byte(len(want)) || string(r.b[1:1+len(want)]) != want {
		return false
	}
	r.b = r.b[1+len(want):]
	return true
}

// uint reads a non-zero unsigned integer in its shortest form.
func (r *putReader) uint() uint64 {
	c := r.byte()
	var v, min uint64
	switch c {
	case mpUint8:
		v, min = uint64(r.byte()), math.MaxInt8+1
	case mpUint16:
		v, min = r.be(2), math.MaxUint8+1
	case mpUint32:
		v, min = r.be(4), math.MaxUint16+1
	case mpUint64:
		v, min = r.be(8), math.MaxUint32+1
	default:
		v, min = uint64(c), 1
		if c > math.MaxInt8 {
			r.ok = false
		}
	}
	if v < min {
		r.ok = false
	}
	return v
}

// int reads a non-zero signed integer in the form appendInt writes.
func (r *putReader) int() int64 {
	c := r.byte()
	var v int64
	switch c {
	case mpInt8:
		v = int64(int8(r.byte()))
	case mpInt16:
		v = int64(int16(r.be(2)))
	case mpInt32:
		v = int64(int32(r.be(4)))
	case mpInt64:
		v = int64(r.be(8))
	default:
		if v = int64(int8(c)); v < -32 {
			r.ok = false
		}
	}
	if v == 0 || len(appendInt(make([]byte, 0, 9), v)) != 1+int(byteLen(c)) {
		r.ok = false
	}
	return v
}

// byteLen is the payload length of an integer format byte.
func byteLen(c byte) byte {
	switch c {
	case mpInt8:
		return 1
	case mpInt16:
		return 2
	case mpInt32:
		return 4
	case mpInt64:
		return 8
	}
	return 0
}

// flag reads true, the only value an omitempty bool is written with.
func (r *putReader) flag() bool {
	if r.byte() != mpTrue {
		r.ok = false
	}
	return true
}

// readPutCommand decodes body as the Put codec writes it. It reports false,
// having decided nothing, for anything else. The command's key and value
// share body's memory.
func readPutCommand(body []byte) (*Command, bool) {
	r := &putReader{b: body, ok: true}
	both := &struct { // one allocation for the command and its put
		c Command
		p Put
	}{}
	c := &both.c
	c.Put = &both.p
	fields := int(r.byte()) - mpFixMapMin
	if fields == 3 {
		if !r.key("ar") {
			return nil, false
		}
		c.AuthRevision = r.uint()
	} else if fields != 2 {
		return nil, false
	}
	if !r.key("k") || r.byte() != byte(CmdPut) || !r.key("p") {
		return nil, false
	}
	c.Kind = CmdPut
	p := c.Put
	fields = int(r.byte()) - mpFixMapMin
	if fields < 1 || fields > 6 {
		return nil, false
	}
	read := 0
	if r.key("il") {
		p.IgnoreLease, read = r.flag(), read+1
	}
	if r.key("iv") {
		p.IgnoreValue, read = r.flag(), read+1
	}
	if !r.key("k") {
		return nil, false
	}
	if p.Key, read = r.raw(), read+1; len(p.Key) == 0 {
		return nil, false
	}
	if r.key("l") {
		p.Lease, read = r.int(), read+1
	}
	if r.key("pk") {
		p.PrevKV, read = r.flag(), read+1
	}
	if r.key("v") {
		if p.Value, read = r.raw(), read+1; len(p.Value) == 0 {
			return nil, false
		}
	}
	if !r.ok || read != fields || len(r.b) != 0 {
		return nil, false
	}
	return c, true
}
