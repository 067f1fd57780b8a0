package kvstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/auth"
	"github.com/kvstore/kvstore/lease"
	"github.com/kvstore/kvstore/mvcc"
)

// The raft snapshot of a node's state:
//
//	magic "KVSFSM", format version byte
//	the raft index of the last entry applied, 8 bytes big-endian
//	the lease table (lease.Table.WriteTo: versioned, CRC-32C checked)
//	the active alarms (appendAlarms: CRC-32C checked), from format 2
//	the members' attributes (appendMemberAttrs: CRC-32C checked), from format 3
//	the auth state (auth.Store.WriteTo: versioned, CRC-32C checked), from format 3
//	the mvcc store (mvcc.Snapshot.WriteTo: versioned, CRC-32C checked)
//
// Each part carries its own checksum and knows its own length. Format 1,
// still read, had no alarms: it restores with none; formats 1 and 2 had no
// member attributes and no auth state: they restore with none and with
// auth disabled, no users and no roles. The FSM's own parts come before
// the mvcc store, which replaces the store's state as it reads (and reads
// ahead): a part read after it could fail with the store already replaced.
// Parts added later go just before it.
const (
	fsmSnapshotMagic     = "KVSFSM"
	fsmSnapshotVersion   = 3
	fsmSnapshotVersionV1 = 1
	fsmSnapshotVersionV2 = 2
)

// errBadSnapshot reports a raft snapshot that cannot be restored.
var errBadSnapshot = errors.New("kvstore: bad snapshot")

// Snapshot implements raft.FSM. It runs on the FSM goroutine, so it takes
// the O(1) mvcc view and serializes the (small) lease table now; Persist
// then streams them while applies continue.
//
// Node.Backup also calls it, from another goroutine, concurrently with
// apply: holding leaseMu, which apply holds for writing around each
// command, keeps the parts consistent with each other (no command half
// in). The applied index may then lag the state by the command being
// marked applied; a backup does not rely on it.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	var leases bytes.Buffer
	f.leaseMu.RLock()
	defer f.leaseMu.RUnlock()
	if _, err := f.leases.WriteTo(&leases); err != nil {
		return nil, fmt.Errorf("kvstore: snapshot of leases: %w", err)
	}
	return &fsmSnapshot{applied: f.applied.get(), leases: leases.Bytes(), kv: f.kv.Snapshot(), alarms: f.alarms.list(),
		memberAttrs: f.memberAttrs.list(), auth: f.auth.AppendSnapshot(nil), metrics: f.observe.metrics,
		since: &f.sinceSnapshot, covered: f.sinceSnapshot.get()}, nil
}

type fsmSnapshot struct {
	// applied is the index of the last entry the snapshot contains, so
	// that a restored node knows how far its state goes (raft does not
	// tell the FSM the index of a snapshot it restores).
	applied uint64
	leases  []byte
	kv      *mvcc.Snapshot
	alarms  []Alarm
	// memberAttrs are the members' published attributes.
	memberAttrs []memberAttrEntry
	auth        []byte       // auth.Store.AppendSnapshot
	metrics     *nodeMetrics // times Persist
	// since is told, once Persist has stored the snapshot, that the
	// covered bytes need no replay (closesnapshot.go).
	since   *replayBytes
	covered int64
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	err := s.write(sink)
	if err != nil {
		sink.Cancel()
		return err
	}
	err = sink.Close()
	s.metrics.snapshotSaved(start, err)
	if err == nil {
		s.since.persisted(s.covered)
	}
	return err
}

func (s *fsmSnapshot) write(w io.Writer) error {
	head := binary.BigEndian.AppendUint64(append([]byte(fsmSnapshotMagic), fsmSnapshotVersion), s.applied)
	if _, err := w.Write(head); err != nil {
		return err
	}
	if _, err := w.Write(s.leases); err != nil {
		return err
	}
	if _, err := w.Write(appendAlarms(nil, s.alarms)); err != nil {
		return err
	}
	if _, err := w.Write(appendMemberAttrs(nil, s.memberAttrs)); err != nil {
		return err
	}
	if _, err := w.Write(s.auth); err != nil {
		return err
	}
	_, err := s.kv.WriteTo(w)
	return err
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM: it replaces the whole state with a snapshot.
// On any error the state is left as it was.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.hooks.beforeRestore()
	head := make([]byte, len(fsmSnapshotMagic)+1+8)
	if _, err := io.ReadFull(rc, head); err != nil {
		return fmt.Errorf("%w: header: %v", errBadSnapshot, err)
	}
	if string(head[:len(fsmSnapshotMagic)]) != fsmSnapshotMagic {
		return fmt.Errorf("%w: bad magic", errBadSnapshot)
	}
	version := head[len(fsmSnapshotMagic)]
	if version < fsmSnapshotVersionV1 || version > fsmSnapshotVersion {
		return fmt.Errorf("%w: unknown format version %d", errBadSnapshot, version)
	}
	applied := binary.BigEndian.Uint64(head[len(fsmSnapshotMagic)+1:])
	if applied <= f.applied.get() {
		// raft installs the leader's latest snapshot whenever the entries
		// a follower needs are gone from the leader's log, even when this
		// node has applied past it (its log had a conflicting suffix, so
		// the leader walked back below its own first entry). Going back to
		// the snapshot would make this node's reads go backwards. Its
		// state is the snapshot plus committed entries, so it is kept, and
		// ApplyBatch skips the entries raft hands over again.
		return nil
	}
	leases := lease.NewTable(f.minTTL)
	if _, err := leases.ReadFrom(rc); err != nil {
		return fmt.Errorf("%w: leases: %w", errBadSnapshot, err)
	}
	var alarms []Alarm // none in format 1
	if version >= fsmSnapshotVersionV2 {
		var err error
		if alarms, err = readAlarms(rc); err != nil {
			return fmt.Errorf("%w: %w", errBadSnapshot, err)
		}
	}
	var attrs []memberAttrEntry // none before format 3
	authState := auth.New()     // disabled, no users or roles, before format 3
	if version >= fsmSnapshotVersion {
		var err error
		if attrs, err = readMemberAttrs(rc); err != nil {
			return fmt.Errorf("%w: %w", errBadSnapshot, err)
		}
		if authState, err = auth.ReadSnapshot(rc); err != nil {
			return fmt.Errorf("%w: %w", errBadSnapshot, err)
		}
	}
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	if err := f.kv.Restore(rc); err != nil {
		return fmt.Errorf("%w: %w", errBadSnapshot, err)
	}
	f.alarms.replace(alarms)
	f.memberAttrs.replace(attrs)
	f.auth.Replace(authState)
	f.leases = leases
	f.watches.Restored()
	f.applied.reset(applied)
	f.sinceSnapshot.reset()
	f.restores.Add(1)
	return nil
}
