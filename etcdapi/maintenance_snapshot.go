package etcdapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// snapshotChunkSize is the size of each blob Snapshot sends but the last,
// etcd's own.
const snapshotChunkSize = 32 << 10

// Snapshot streams a backup of this member's state (kvstore.Node.Backup,
// taken at a linearizable read point, so it holds every write
// acknowledged before the call) as etcd streams its backend file: blobs
// of 32 KiB, then one message holding the SHA-256 of every byte sent.
// Before the digest the backup is padded with zero bytes to a multiple of
// 512 (kvstore.EtcdSnapshotPadding), since etcd's client refuses a
// snapshot whose size is not 32 modulo 512. The file "etcdctl snapshot
// save" writes is then a kvstore backup with etcd's trailer, which
// kvstore.ReadBackupStatus and kvstore.Restore read and verify (not a bolt
// file: etcdutl cannot restore it).
//
// The backup is encoded as it is sent, so its size is not known
// beforehand: remaining_bytes is an estimate, the store's size less what
// was sent, never below 1 before the last blob of data, and 0 in that blob
// and in the digest's message, as etcd's. The first message carries the
// response header; version (etcd's storage schema version) is empty:
// kvstore has no bolt schema, and clientv3 then reports none, as for an
// etcd older than v3.6.
//
// An error taking the backup (no leader for the read point, the node
// closed) ends the stream with its etcd error; a client that goes away
// stops the backup, and Close ends the stream with ErrGRPCStopped.
func (m *maintenanceService) Snapshot(_ *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(m.s.ctx, cancel)
	defer stop()
	if err := m.s.startStream(); err != nil {
		return err
	}
	defer m.s.streams.Done()

	estimate := m.s.node.Status().StoreSize
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(writeEtcdSnapshot(ctx, m.s.node, pw))
	}()
	defer func() {
		pr.Close() // a write still blocked fails; the backup stops
		<-written
	}()

	digest := sha256.New()
	var sent int64
	header := m.s.currentHeader()
	chunk, err := readChunk(pr)
	for {
		if err != nil {
			return m.snapshotFailed(ctx, err)
		}
		next, err2 := readChunk(pr)
		if err2 != nil && err2 != io.EOF {
			return m.snapshotFailed(ctx, err2)
		}
		last := err2 == io.EOF
		sent += int64(len(chunk))
		digest.Write(chunk)
		resp := &pb.SnapshotResponse{Header: header, Blob: chunk}
		if !last {
			resp.RemainingBytes = uint64(max(estimate-sent, 1))
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		header = nil
		if last {
			break
		}
		chunk, err = next, nil
	}
	return stream.Send(&pb.SnapshotResponse{Blob: digest.Sum(nil)})
}

// writeEtcdSnapshot writes node's backup to w, then the zero padding that
// precedes etcd's digest.
func writeEtcdSnapshot(ctx context.Context, node *kvstore.Node, w io.Writer) error {
	info, err := node.Backup(ctx, w)
	if err != nil {
		return err
	}
	_, err = w.Write(make([]byte, kvstore.EtcdSnapshotPadding(info.Size)))
	return err
}

// readChunk reads the next blob from r: snapshotChunkSize bytes, fewer at
// the end, or io.EOF once r is drained.
func readChunk(r io.Reader) ([]byte, error) {
	buf := make([]byte, snapshotChunkSize)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return buf[:n], nil
	}
	return buf[:n], err
}

// snapshotFailed is the error that ends a Snapshot stream whose backup
// failed with err.
func (m *maintenanceService) snapshotFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return m.s.streamEnded(ctx)
	}
	return toGRPC(err)
}
