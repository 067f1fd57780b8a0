package auth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The snapshot of a Store: the magic "KVSAUTH", a format version byte, the
// body's length (4 bytes big-endian), the body, and the CRC-32C of all of
// it (4 bytes big-endian). The body is: a flags byte (1: enabled), the
// auth revision (uvarint), the secret, the number of users, then each
// user by name order (name, hash, a no-password byte, generation
// (uvarint), the number of roles and each role name), the number of roles,
// then each role by name order (name, the number of permissions, each as
// its type byte, key and end). Strings and byte slices are a uvarint
// length and the bytes. A Store's snapshot is canonical: stores in the
// same state write the same bytes.
const (
	snapshotMagic   = "KVSAUTH"
	snapshotVersion = 1
	// maxSnapshotBody bounds the body length a snapshot may claim, so a
	// damaged length cannot allocate much.
	maxSnapshotBody = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteTo writes the store's snapshot to w.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(s.AppendSnapshot(nil))
	return int64(n), err
}

// AppendSnapshot returns buf with the store's snapshot appended.
func (s *Store) AppendSnapshot(buf []byte) []byte {
	body := s.appendBody(nil)
	start := len(buf)
	buf = append(buf, snapshotMagic...)
	buf = append(buf, snapshotVersion)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(body)))
	buf = append(buf, body...)
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf[start:], castagnoli))
}

func (s *Store) appendBody(buf []byte) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var flags byte
	if s.enabled {
		flags = 1
	}
	buf = append(buf, flags)
	buf = binary.AppendUvarint(buf, s.revision)
	buf = appendBytes(buf, s.secret)
	buf = binary.AppendUvarint(buf, uint64(len(s.users)))
	for _, name := range sortedNames(s.users) {
		u := s.users[name]
		buf = appendBytes(buf, []byte(name))
		buf = appendBytes(buf, u.hash)
		buf = append(buf, boolByte(u.noPassword))
		buf = binary.AppendUvarint(buf, u.generation)
		buf = binary.AppendUvarint(buf, uint64(len(u.roles)))
		for _, r := range u.roles {
			buf = appendBytes(buf, []byte(r))
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(s.roles)))
	for _, name := range sortedNames(s.roles) {
		r := s.roles[name]
		buf = appendBytes(buf, []byte(name))
		buf = binary.AppendUvarint(buf, uint64(len(r.perms)))
		for _, p := range r.perms {
			buf = append(buf, byte(p.Type))
			buf = appendBytes(buf, p.Key)
			buf = appendBytes(buf, p.End)
		}
	}
	return buf
}

func appendBytes(buf, b []byte) []byte {
	return append(binary.AppendUvarint(buf, uint64(len(b))), b...)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// ReadSnapshot reads a snapshot WriteTo wrote, exactly its bytes, into a
// new Store. Anything it cannot read — bad magic, an unknown version, a
// checksum mismatch, truncation, an inconsistent body — is
// ErrCorruptSnapshot (or r's own read error, wrapped).
func ReadSnapshot(r io.Reader) (*Store, error) {
	head := make([]byte, len(snapshotMagic)+1+4)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorruptSnapshot, err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorruptSnapshot)
	}
	if v := head[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrCorruptSnapshot, v)
	}
	n := binary.BigEndian.Uint32(head[len(snapshotMagic)+1:])
	if n > maxSnapshotBody {
		return nil, fmt.Errorf("%w: body of %d bytes", ErrCorruptSnapshot, n)
	}
	rest := make([]byte, int(n)+4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrCorruptSnapshot, err)
	}
	body := rest[:n]
	sum := crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, body)
	if binary.BigEndian.Uint32(rest[n:]) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptSnapshot)
	}
	s, err := decodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	return s, nil
}

// bodyReader reads a body; the first failure sticks.
type bodyReader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated body")

func (d *bodyReader) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errTruncated
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *bodyReader) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *bodyReader) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errTruncated
		return nil
	}
	out := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return out
}

// count reads a count of items of at least min bytes each, refusing one
// the rest of the body cannot hold.
func (d *bodyReader) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.err = fmt.Errorf("count %d out of range", n)
	}
	return int(n)
}

func decodeBody(body []byte) (*Store, error) {
	d := &bodyReader{b: body}
	s := New()
	flags := d.byte()
	s.enabled = flags&1 != 0
	s.revision = d.uvarint()
	if secret := d.bytes(); len(secret) > 0 {
		s.secret = secret
	}
	for range d.count(4) {
		name := string(d.bytes())
		u := &user{hash: d.bytes(), noPassword: d.byte() != 0, generation: d.uvarint()}
		if len(u.hash) == 0 {
			u.hash = nil
		}
		for range d.count(1) {
			u.roles = append(u.roles, string(d.bytes()))
		}
		if d.err != nil {
			return nil, d.err
		}
		if _, dup := s.users[name]; dup || name == "" {
			return nil, fmt.Errorf("user %q repeated or empty", name)
		}
		s.users[name] = u
	}
	for range d.count(2) {
		name := string(d.bytes())
		r := &role{}
		for range d.count(3) {
			p := Permission{Type: PermType(d.byte()), Key: d.bytes(), End: d.bytes()}
			if d.err == nil && !p.Type.valid() {
				return nil, fmt.Errorf("role %q: permission type %d", name, p.Type)
			}
			r.perms = append(r.perms, p)
		}
		if d.err != nil {
			return nil, d.err
		}
		if _, dup := s.roles[name]; dup || name == "" {
			return nil, fmt.Errorf("role %q repeated or empty", name)
		}
		s.roles[name] = r
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the body", len(d.b))
	}
	if s.enabled != (s.secret != nil) {
		return nil, errors.New("enabled without a secret, or a secret while disabled")
	}
	return s, nil
}
