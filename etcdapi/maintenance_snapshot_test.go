package etcdapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/etcdapi"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// putSnapshotData writes keys enough for a snapshot of several 32 KiB
// blobs and returns the revision of the last write.
func putSnapshotData(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx := testContext(t)
	value := strings.Repeat("x", 1024)
	var rev int64
	for i := range 200 {
		put, err := cli.Put(ctx, fmt.Sprintf("snap/%03d", i), value)
		if err != nil {
			t.Fatal(err)
		}
		rev = put.Header.Revision
	}
	return rev
}

// checkEtcdSnapshot fails unless data is a kvstore backup of revision rev
// or later, with etcd's trailer: a size of 32 modulo 512 (etcd's client
// checks it), the SHA-256 of the rest at the end, and kvstore reads it.
func checkEtcdSnapshot(t *testing.T, data []byte, rev int64, keys int) *kvstore.BackupStatus {
	t.Helper()
	if len(data)%512 != sha256.Size {
		t.Fatalf("snapshot of %d bytes: etcd's client wants 32 modulo 512", len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		t.Fatalf("snapshot digest %x, want %x", sum, want)
	}
	st, err := kvstore.ReadBackupStatus(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ReadBackupStatus: %v", err)
	}
	if st.Revision < rev || st.Keys != keys || st.TotalSize != int64(len(data)) {
		t.Fatalf("backup status %+v, want revision %d or later, %d keys, %d bytes", st, rev, keys, len(data))
	}
	return st
}

// TestSnapshot: Snapshot streams a follower's backup in 32 KiB blobs and
// then its SHA-256, as etcd; clientv3's snapshot.SaveWithVersion (what
// "etcdctl snapshot save" runs) saves it, and kvstore restores the file
// into a cluster that hashes as the source did.
func TestSnapshot(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	f := c.Followers()[0]
	cli := c.client(t, c.Index(f))
	rev := putSnapshotData(t, cli)

	stream, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Snapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*pb.SnapshotResponse
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, resp)
	}
	if len(msgs) < 4 {
		t.Fatalf("%d messages: want several blobs and the digest", len(msgs))
	}
	var data []byte
	for i, m := range msgs {
		data = append(data, m.Blob...)
		switch {
		case i == 0 && (m.Header == nil || m.Header.MemberId != etcdapi.MemberID(f.ID())):
			t.Errorf("first message's header %v, want %s's", m.Header, f.ID())
		case i < len(msgs)-2 && (len(m.Blob) != 32<<10 || m.RemainingBytes == 0):
			t.Errorf("message %d: %d bytes, %d remaining; want 32 KiB and more to come", i, len(m.Blob), m.RemainingBytes)
		case i >= len(msgs)-2 && m.RemainingBytes != 0:
			t.Errorf("message %d of %d: %d remaining, want 0", i, len(msgs), m.RemainingBytes)
		}
	}
	if last := msgs[len(msgs)-1]; len(last.Blob) != sha256.Size {
		t.Errorf("last message of %d bytes, want the digest", len(last.Blob))
	}
	st := checkEtcdSnapshot(t, data, rev, 200)

	rc, err := cli.Snapshot(ctx) // clientv3's own reader of the stream
	if err != nil {
		t.Fatal(err)
	}
	read, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("reading clientv3's Snapshot: %v", err)
	}
	checkEtcdSnapshot(t, read, rev, 200)

	path := filepath.Join(t.TempDir(), "snap.db")
	cfg := clientv3.Config{Endpoints: []string{c.endpoints[c.Index(f)]}, DialTimeout: 10 * time.Second}
	version, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), cfg, path)
	if err != nil {
		t.Fatalf("SaveWithVersion: %v", err)
	}
	if version != "" {
		t.Errorf("storage version %q, want none", version)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkEtcdSnapshot(t, saved, rev, 200)

	restored, err := kvstore.Restore(bytes.NewReader(saved), filepath.Join(t.TempDir(), "r1"), kvstore.RestoreMember("r1"),
		kvstore.RestoreCluster(kvstore.Peer{ID: "r1", Address: "r1"}), kvstore.RestoreClusterToken("restored"))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if h, err := f.HashKV(st.Revision); err != nil || restored.Hash != h.Hash {
		t.Errorf("restored hash %08x, source's at %d %+v %v", restored.Hash, st.Revision, h, err)
	}
}

// TestSnapshotNoLeader: on a member cut from its quorum the backup waits
// for a read point, and the stream fails, without a blob, when the client
// gives up (or with etcd's no-leader error); the handler and its backup
// goroutine return then, or the cleanup's Server.Close would wait for
// them forever.
func TestSnapshotNoLeader(t *testing.T) {
	c := newCluster(t, 3)
	f := c.Followers()[0]
	cli := c.client(t, c.Index(f))
	putSnapshotData(t, cli)
	for i := range 3 {
		if c.Node(i) != f {
			c.stop(i)
		}
	}
	ctx, cancel := testContextCancel(t)
	defer cancel()
	ctx, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	stream, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Snapshot(ctx, &pb.SnapshotRequest{})
	if err == nil {
		var resp *pb.SnapshotResponse
		if resp, err = stream.Recv(); err == nil {
			t.Fatalf("a blob without a quorum: %d bytes", len(resp.Blob))
		}
	}
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Errorf("snapshot without a quorum: %v, want Unavailable (no leader) or the deadline", err)
	}
}
