package lease

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math"
	"strings"
)

// Snapshot format, version 1. All fixed-width integers are big-endian;
// "uvarint" is encoding/binary's unsigned varint in its shortest form.
//
//	header  magic "KVLS" (4 bytes) | version uint32 | body length uint64
//	body    lease count uvarint, then per lease in ascending ID order:
//	        ID uvarint | TTL uvarint | Remaining uvarint | key count uvarint |
//	        per key in ascending order: length uvarint | key bytes
//	trailer CRC-32C (Castagnoli) of header and body, uint32
//
// The encoding of a state is unique, so equal tables write equal bytes and
// every snapshot that restores writes back exactly as it was read.
const (
	snapshotMagic      = "KVLS"
	snapshotVersion    = 1
	snapshotHeaderSize = 16
)

// WriteTo writes a snapshot of the table to w and returns the number of
// bytes written. It implements io.WriterTo. The table's minimum TTL is
// configuration, not state, and is not written.
func (t *Table) WriteTo(w io.Writer) (int64, error) {
	body := t.appendBody(nil)
	buf := make([]byte, 0, snapshotHeaderSize+len(body)+4)
	buf = append(buf, snapshotMagic...)
	buf = binary.BigEndian.AppendUint32(buf, snapshotVersion)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(body)))
	buf = append(buf, body...)
	buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, crc32.MakeTable(crc32.Castagnoli)))
	n, err := w.Write(buf)
	return int64(n), err
}

// Hash returns a 64-bit FNV-1a hash of the table's state (the snapshot body),
// for comparing replicas: tables fed the same calls have the same hash.
func (t *Table) Hash() uint64 {
	h := fnv.New64a()
	h.Write(t.appendBody(nil))
	return h.Sum64()
}

// appendBody appends the canonical encoding of the table's state to buf.
func (t *Table) appendBody(buf []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(t.leases)))
	for _, id := range t.IDs() {
		e := t.leases[id]
		buf = binary.AppendUvarint(buf, uint64(id))
		buf = binary.AppendUvarint(buf, uint64(e.ttl))
		buf = binary.AppendUvarint(buf, uint64(e.remaining))
		keys := sortedKeys(e.keys)
		buf = binary.AppendUvarint(buf, uint64(len(keys)))
		for _, k := range keys {
			buf = binary.AppendUvarint(buf, uint64(len(k)))
			buf = append(buf, k...)
		}
	}
	return buf
}

// ReadFrom replaces the table's state with the snapshot read from r and
// returns the number of bytes read. It implements io.ReaderFrom. It reads
// exactly the bytes WriteTo wrote, so a snapshot may be followed by other
// data in the same stream. On any error the table is unchanged; malformed
// input (bad magic, truncation, checksum mismatch, broken invariants) is
// reported as ErrCorruptSnapshot, an unknown format version as
// ErrSnapshotVersion, and other read errors are returned wrapped. The
// table's minimum TTL is kept.
func (t *Table) ReadFrom(r io.Reader) (int64, error) {
	cr := &countingReader{r: r}
	leases, keyLease, err := readSnapshot(cr)
	if err != nil {
		return cr.n, err
	}
	t.leases, t.keyLease = leases, keyLease
	return cr.n, nil
}

// readSnapshot decodes and validates a snapshot.
func readSnapshot(r io.Reader) (map[ID]*tableEntry, map[string]ID, error) {
	var header [snapshotHeaderSize]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, nil, readError("header", err)
	}
	if string(header[:4]) != snapshotMagic {
		return nil, nil, fmt.Errorf("%w: bad magic %q", ErrCorruptSnapshot, header[:4])
	}
	if v := binary.BigEndian.Uint32(header[4:8]); v != snapshotVersion {
		return nil, nil, fmt.Errorf("%w: %d (want %d)", ErrSnapshotVersion, v, snapshotVersion)
	}
	bodyLen := binary.BigEndian.Uint64(header[8:16])
	if bodyLen > math.MaxInt64 {
		return nil, nil, fmt.Errorf("%w: body length %d", ErrCorruptSnapshot, bodyLen)
	}

	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	crc.Write(header[:])
	limited := &io.LimitedReader{R: r, N: int64(bodyLen)}
	body := bufio.NewReader(io.TeeReader(limited, crc))
	leases, keyLease, err := decodeBody(body)
	if err != nil {
		return nil, nil, err
	}
	if _, err := body.ReadByte(); err == nil {
		return nil, nil, fmt.Errorf("%w: trailing bytes in body", ErrCorruptSnapshot)
	} else if err != io.EOF {
		return nil, nil, readError("body", err)
	}
	if limited.N != 0 {
		// The body ended before its declared length: the input is short.
		return nil, nil, readError("body", io.ErrUnexpectedEOF)
	}

	var trailer [4]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil {
		return nil, nil, readError("checksum", err)
	}
	if got, want := binary.BigEndian.Uint32(trailer[:]), crc.Sum32(); got != want {
		return nil, nil, fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x)", ErrCorruptSnapshot, got, want)
	}
	return leases, keyLease, nil
}

// decodeBody decodes and validates a snapshot body, reading no further than
// its end.
func decodeBody(r *bufio.Reader) (map[ID]*tableEntry, map[string]ID, error) {
	count, err := readUvarint(r, "lease count")
	if err != nil {
		return nil, nil, err
	}
	// Never trust a count for allocation: the input may be hostile.
	leases := make(map[ID]*tableEntry, min(count, 1024))
	keyLease := make(map[string]ID)
	var prev ID
	for i := range count {
		raw, err := readUvarint(r, "lease ID")
		if err != nil {
			return nil, nil, err
		}
		// IDs ascend as int64 (a negative ID is written as its
		// two's-complement uvarint); none is NoLease.
		id := ID(int64(raw))
		if id == NoLease || (i > 0 && id <= prev) {
			return nil, nil, fmt.Errorf("%w: lease ID %d out of order or invalid", ErrCorruptSnapshot, id)
		}
		prev = id
		ttl, err := readUvarint(r, "TTL")
		if err != nil {
			return nil, nil, err
		}
		if ttl < 1 || ttl > uint64(MaxTTL) {
			return nil, nil, fmt.Errorf("%w: lease %d has TTL %d", ErrCorruptSnapshot, id, ttl)
		}
		remaining, err := readUvarint(r, "remaining TTL")
		if err != nil {
			return nil, nil, err
		}
		if remaining > ttl {
			return nil, nil, fmt.Errorf("%w: lease %d has remaining TTL %d > TTL %d", ErrCorruptSnapshot, id, remaining, ttl)
		}
		e := &tableEntry{ttl: int64(ttl), remaining: int64(remaining)}
		nkeys, err := readUvarint(r, "key count")
		if err != nil {
			return nil, nil, err
		}
		prevKey := ""
		for i := range nkeys {
			key, err := readKey(r)
			if err != nil {
				return nil, nil, err
			}
			if i > 0 && key <= prevKey {
				return nil, nil, fmt.Errorf("%w: keys of lease %d out of order", ErrCorruptSnapshot, id)
			}
			if other, ok := keyLease[key]; ok {
				return nil, nil, fmt.Errorf("%w: key %q attached to leases %d and %d", ErrCorruptSnapshot, key, other, id)
			}
			prevKey = key
			if e.keys == nil {
				e.keys = make(map[string]struct{}, min(nkeys, 1024))
			}
			e.keys[key] = struct{}{}
			keyLease[key] = id
		}
		leases[id] = e
	}
	return leases, keyLease, nil
}

// readKey reads a length-prefixed key, allocating no more than the input
// actually holds.
func readKey(r *bufio.Reader) (string, error) {
	n, err := readUvarint(r, "key length")
	if err != nil {
		return "", err
	}
	const small = 64 << 10
	if n <= small {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", readError("key", err)
		}
		return string(buf), nil
	}
	if n > math.MaxInt64 {
		return "", fmt.Errorf("%w: key length %d", ErrCorruptSnapshot, n)
	}
	var sb strings.Builder
	if _, err := io.CopyN(&sb, r, int64(n)); err != nil {
		return "", readError("key", err)
	}
	return sb.String(), nil
}

// readUvarint reads an unsigned varint, rejecting encodings that overflow 64
// bits or are longer than necessary (so that every state has exactly one
// encoding).
func readUvarint(r io.ByteReader, what string) (uint64, error) {
	var x uint64
	var shift uint
	for i := range binary.MaxVarintLen64 {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, readError(what, err)
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: %s: non-minimal varint", ErrCorruptSnapshot, what)
			}
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, fmt.Errorf("%w: %s: varint overflows 64 bits", ErrCorruptSnapshot, what)
}

// readError classifies an error from reading part of a snapshot: running out
// of input means the snapshot is truncated; anything else is the reader's
// own failure.
func readError(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated %s: %w", ErrCorruptSnapshot, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("lease: reading snapshot %s: %w", what, err)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Compile-time checks that Table snapshots plug into io.Copy and friends.
var (
	_ io.WriterTo   = (*Table)(nil)
	_ io.ReaderFrom = (*Table)(nil)
)
