package kvstore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/watch"
)

// A backup is the node's raft snapshot (snapshot.go) with a header that
// says what it holds and a checksum over all of it:
//
//	magic "KVSBACKUP", format version byte
//	uvarint header length, header:
//	  uvarint revision, uvarint compact revision, uvarint raft index,
//	  varint creation time (Unix nanoseconds),
//	  string cluster token, string ID of the member that took it,
//	  uvarint member count, per member: string ID, string address
//	  (a string is its uvarint length, then its bytes)
//	the FSM snapshot, in frames: uvarint length, bytes; a 0 length ends it
//	CRC-32C (Castagnoli) of every preceding byte, 4 bytes little-endian
//
// The body is the FSM's own snapshot encoding, so whatever a raft snapshot
// holds (keys with their history since the last compaction, leases with
// their remaining TTL, the revision) a backup holds too, in one format.
// The frames let a reader find the checksum without relying on how far the
// snapshot's decoders read ahead.
const (
	backupMagic   = "KVSBACKUP"
	backupVersion = 1
	// backupMaxHeader bounds the header a reader accepts, so that a
	// corrupt length cannot make it allocate without limit.
	backupMaxHeader = 1 << 20
)

// BackupInfo describes a backup Node.Backup wrote.
type BackupInfo struct {
	// Revision and CompactRevision are the store's at the backup's point.
	Revision        int64
	CompactRevision int64
	// Index is the raft index the backed-up state had applied.
	Index uint64
	// Size is the number of bytes written.
	Size int64
	// ClusterToken, Member and Members identify the cluster backed up
	// and the member that took the backup.
	ClusterToken string
	Member       string
	Members      []Peer
	// Created is when the backup's point was taken, by the member's clock.
	Created time.Time
}

// Backup writes a consistent backup of the node's whole state to w: every
// key with its history since the last compaction, the leases with their
// remaining TTL, the revision and the cluster's identity, checksummed. It
// is etcd's "etcdctl snapshot save"; [Restore] turns a backup into the data
// dirs of a new cluster and [ReadBackupStatus] describes one.
//
// Any member may take it. It first makes a linearizable read point, as a
// linearizable Get (so the backup holds every write acknowledged before
// the call), then takes an O(1) copy-on-write view of the local state and
// streams it while writes go on: writes wait only while the view is taken
// (the lease table is copied, the key tree's copy is O(1)).
//
// If ctx ends or w fails, Backup stops and returns the error; what was
// written is incomplete (a reader refuses it with ErrCorruptBackup) and
// the node is unaffected. It is safe for concurrent use.
func (n *Node) Backup(ctx context.Context, w io.Writer) (*BackupInfo, error) {
	if n.closedCtx.Err() != nil {
		return nil, n.errClosed()
	}
	if err := n.readIndex(ctx); err != nil {
		return nil, err
	}
	if err := n.refuseIfCorrupt(); err != nil {
		return nil, err // its state is not worth backing up
	}
	cf := n.raft.GetConfiguration()
	if err := n.waitFuture(ctx, cf); err != nil {
		return nil, err
	}
	snap, err := n.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	fs := snap.(*fsmSnapshot)
	info := &BackupInfo{
		Revision: fs.kv.Revision(), CompactRevision: fs.kv.CompactRevision(), Index: fs.applied,
		ClusterToken: n.cfg.clusterToken, Member: n.cfg.id, Created: n.cfg.hooks.now(),
	}
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			info.Members = append(info.Members, Peer{ID: string(s.ID), Address: string(s.Address)})
		}
	}
	if err := writeBackup(ctx, w, info, fs); err != nil {
		return nil, err
	}
	return info, nil
}

// writeBackup writes the backup of fs described by info to w, and sets
// info.Size.
func writeBackup(ctx context.Context, w io.Writer, info *BackupInfo, fs *fsmSnapshot) error {
	out := &backupWriter{ctx: ctx, w: w}
	out.write(encodeBackupHeader(info))
	body := &frameWriter{w: out}
	if err := fs.write(body); err != nil && out.err == nil {
		out.err = err
	}
	out.write([]byte{0})
	out.write(binary.LittleEndian.AppendUint32(nil, out.crc))
	info.Size = out.n
	if out.err != nil {
		return fmt.Errorf("kvstore: backup: %w", out.err)
	}
	return nil
}

func encodeBackupHeader(info *BackupInfo) []byte {
	var h []byte
	h = binary.AppendUvarint(h, uint64(info.Revision))
	h = binary.AppendUvarint(h, uint64(info.CompactRevision))
	h = binary.AppendUvarint(h, info.Index)
	h = binary.AppendVarint(h, info.Created.UnixNano())
	h = appendString(h, info.ClusterToken)
	h = appendString(h, info.Member)
	h = binary.AppendUvarint(h, uint64(len(info.Members)))
	for _, p := range info.Members {
		h = appendString(h, p.ID)
		h = appendString(h, p.Address)
	}
	out := append([]byte(backupMagic), backupVersion)
	out = binary.AppendUvarint(out, uint64(len(h)))
	return append(out, h...)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// backupWriter checksums and counts what it writes and stops at the first
// error or once ctx ends.
type backupWriter struct {
	ctx context.Context
	w   io.Writer
	crc uint32
	n   int64
	err error
}

func (b *backupWriter) Write(p []byte) (int, error) {
	b.write(p)
	if b.err != nil {
		return 0, b.err
	}
	return len(p), nil
}

func (b *backupWriter) write(p []byte) {
	if b.err != nil {
		return
	}
	if b.err = b.ctx.Err(); b.err != nil {
		return
	}
	b.crc = crc32.Update(b.crc, castagnoli, p)
	n, err := b.w.Write(p)
	b.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	b.err = err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameWriter writes each Write as one frame of the backup's body.
type frameWriter struct{ w *backupWriter }

func (f *frameWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.w.write(binary.AppendUvarint(nil, uint64(len(p))))
	return f.w.Write(p)
}

// BackupStatus describes a backup, as etcd's "etcdutl snapshot status".
type BackupStatus struct {
	// FormatVersion is the backup format's version.
	FormatVersion int
	// Revision and CompactRevision are the store's at the backup's point.
	Revision        int64
	CompactRevision int64
	// Hash is what Node.HashKV(Revision) returned on the backed-up
	// cluster, and returns on a cluster restored from it.
	Hash uint32
	// Keys counts the live keys (as Status.Keys); Leases the leases.
	Keys   int
	Leases int
	// TotalSize is the backup's size in bytes.
	TotalSize int64
	// Index is the raft index the backed-up state had applied.
	Index        uint64
	ClusterToken string
	Member       string
	Members      []Peer
	Created      time.Time
}

// ReadBackupStatus reads a whole backup from r, checks it (checksums and
// the consistency of every record) and describes it. A backup that is not
// intact is ErrCorruptBackup; an error reading r is returned wrapped. It
// holds the backed-up state in memory while it runs (the hash and the key
// count are computed from it), and is safe for concurrent use.
func ReadBackupStatus(r io.Reader) (*BackupStatus, error) {
	b, err := decodeBackup(r)
	if err != nil {
		return nil, err
	}
	defer b.state.close()
	return b.status()
}

// decodedBackup is a backup read and checked in full: its header and its
// state restored into an FSM of its own.
type decodedBackup struct {
	info  BackupInfo
	size  int64
	state *fsm
}

func (b *decodedBackup) status() (*BackupStatus, error) {
	hash, err := b.state.hash(b.info.Revision)
	if err != nil {
		return nil, err
	}
	ids, _ := b.state.leaseIDs()
	i := b.info
	return &BackupStatus{
		FormatVersion: backupVersion, Revision: i.Revision, CompactRevision: i.CompactRevision,
		Hash: hash, Keys: b.state.status().Keys, Leases: len(ids), TotalSize: b.size, Index: i.Index,
		ClusterToken: i.ClusterToken, Member: i.Member, Members: i.Members, Created: i.Created,
	}, nil
}

// decodeBackup reads and checks a whole backup. The caller closes the
// state's FSM.
func decodeBackup(r io.Reader) (*decodedBackup, error) {
	in := &backupReader{r: bufio.NewReaderSize(r, 256<<10), sha: sha256.New()}
	b, err := in.decode()
	if in.readErr != nil {
		// The source failed: not the backup's fault.
		if b != nil {
			b.state.close()
		}
		return nil, fmt.Errorf("kvstore: reading backup: %w", in.readErr)
	}
	if err != nil {
		if b != nil {
			b.state.close()
		}
		return nil, fmt.Errorf("%w: %w", ErrCorruptBackup, err)
	}
	return b, nil
}

func (in *backupReader) decode() (*decodedBackup, error) {
	head := make([]byte, len(backupMagic)+1)
	if _, err := io.ReadFull(in, head); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if string(head[:len(backupMagic)]) != backupMagic {
		return nil, errors.New("not a kvstore backup (bad magic)")
	}
	if v := head[len(backupMagic)]; v != backupVersion {
		return nil, fmt.Errorf("unknown format version %d", v)
	}
	size, err := binary.ReadUvarint(in)
	if err != nil || size > backupMaxHeader {
		return nil, fmt.Errorf("bad header length (%v)", err)
	}
	h := make([]byte, size)
	if _, err := io.ReadFull(in, h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	b := &decodedBackup{}
	if err := decodeBackupHeader(h, &b.info); err != nil {
		return nil, err
	}
	// The lease TTL floor is the restored cluster's configuration, not
	// the backup's; 1 accepts every lease.
	b.state = newFSM(1, 0, watch.Config{})
	frames := &frameReader{in: in}
	if err := b.state.Restore(io.NopCloser(frames)); err != nil {
		return b, err
	}
	if err := frames.drain(); err != nil {
		return b, err
	}
	want := in.crc
	var sum [4]byte
	if _, err := io.ReadFull(in, sum[:]); err != nil {
		return b, fmt.Errorf("checksum: %w", err)
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != want {
		return b, fmt.Errorf("checksum mismatch: stored %08x, computed %08x", got, want)
	}
	if err := in.readEtcdTrailer(); err != nil {
		return b, err
	}
	b.size = in.n
	switch {
	case b.state.appliedIndex() != b.info.Index:
		return b, fmt.Errorf("header says raft index %d, state has %d", b.info.Index, b.state.appliedIndex())
	case b.state.revision() != b.info.Revision:
		return b, fmt.Errorf("header says revision %d, state has %d", b.info.Revision, b.state.revision())
	case b.state.compactRevision() != b.info.CompactRevision:
		return b, fmt.Errorf("header says compact revision %d, state has %d", b.info.CompactRevision, b.state.compactRevision())
	}
	return b, nil
}

func decodeBackupHeader(h []byte, info *BackupInfo) error {
	d := headerDecoder{b: h}
	info.Revision = int64(d.uvarint())
	info.CompactRevision = int64(d.uvarint())
	info.Index = d.uvarint()
	info.Created = time.Unix(0, d.varint())
	info.ClusterToken = d.string()
	info.Member = d.string()
	count := d.uvarint()
	for i := uint64(0); i < count && d.err == nil; i++ {
		info.Members = append(info.Members, Peer{ID: d.string(), Address: d.string()})
	}
	switch {
	case d.err != nil:
		return d.err
	case len(d.b) != 0:
		return errors.New("header: trailing bytes")
	case info.Index == 0:
		return errors.New("header: raft index 0")
	}
	return nil
}

type headerDecoder struct {
	b   []byte
	err error
}

func (d *headerDecoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *headerDecoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *headerDecoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *headerDecoder) fail() {
	if d.err == nil {
		d.err = errors.New("header: malformed")
	}
	d.b = nil
}

// backupReader checksums and counts what is read through it, and keeps
// the source's own error (anything but EOF) apart from corruption.
type backupReader struct {
	r       *bufio.Reader
	crc     uint32
	sha     hash.Hash // for etcd's trailer (backup_etcd.go)
	n       int64
	readErr error
}

func (in *backupReader) Read(p []byte) (int, error) {
	n, err := in.r.Read(p)
	in.account(p[:n])
	if err != nil && err != io.EOF && in.readErr == nil {
		in.readErr = err
	}
	return n, err
}

func (in *backupReader) ReadByte() (byte, error) {
	c, err := in.r.ReadByte()
	if err == nil {
		in.account([]byte{c})
	} else if err != io.EOF && in.readErr == nil {
		in.readErr = err
	}
	return c, err
}

func (in *backupReader) account(p []byte) {
	in.crc = crc32.Update(in.crc, castagnoli, p)
	in.sha.Write(p)
	in.n += int64(len(p))
}

// frameReader reads the frames of a backup's body as one stream.
type frameReader struct {
	in   *backupReader
	left uint64 // bytes left in the current frame
	done bool   // the end frame was read
	err  error
}

func (f *frameReader) Read(p []byte) (int, error) {
	for f.left == 0 {
		if f.done {
			return 0, io.EOF
		}
		if f.err != nil {
			return 0, f.err
		}
		size, err := binary.ReadUvarint(f.in)
		if err != nil {
			f.err = io.ErrUnexpectedEOF
			return 0, f.err
		}
		f.left, f.done = size, size == 0
	}
	n, err := f.in.Read(p[:min(uint64(len(p)), f.left)])
	f.left -= uint64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// drain checks that the body ends where the snapshot did.
func (f *frameReader) drain() error {
	var one [1]byte
	n, err := f.Read(one[:])
	switch {
	case n > 0:
		return errors.New("data after the state")
	case err == io.EOF:
		return nil
	}
	return err
}
