package kvstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// loadCluster writes keys with history, a compaction and a lease with a
// key to n, and returns the lease's ID.
func loadCluster(t *testing.T, n *kvstore.Node) int64 {
	t.Helper()
	ctx := context.Background()
	for i := range 50 {
		for v := range 3 {
			mustPut(t, n, fmt.Sprintf("k/%03d", i), fmt.Sprintf("v%d", v))
		}
	}
	if _, err := n.Compact(ctx, mustRevision(t, n)-20); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Delete(ctx, b("k/000")); err != nil {
		t.Fatal(err)
	}
	g, err := n.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, b("leased"), b("x"), kvstore.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	return g.ID
}

// restoreCluster restores backup into fresh dirs for a new 3-member
// cluster named r1…r3 and opens them on a network of their own.
func restoreCluster(t *testing.T, backup []byte, token string) []*kvstore.Node {
	t.Helper()
	network := transport.NewNetwork()
	var peers []kvstore.Peer
	for i := range 3 {
		id := fmt.Sprint("r", i+1)
		peers = append(peers, kvstore.Peer{ID: id, Address: id})
	}
	var nodes []*kvstore.Node
	root := t.TempDir()
	for i, p := range peers {
		dir := filepath.Join(root, p.ID)
		if i == 0 { // an existing, empty dir is filled; an absent one created
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := kvstore.Restore(bytes.NewReader(backup), dir, kvstore.RestoreMember(p.ID),
			kvstore.RestoreCluster(peers...), kvstore.RestoreClusterToken(token)); err != nil {
			t.Fatalf("Restore %s: %v", p.ID, err)
		}
		tr, err := network.Join(p.Address)
		if err != nil {
			t.Fatal(err)
		}
		n, err := kvstore.Open(dir, kvstore.WithID(p.ID), kvstore.WithTransport(tr), kvstore.WithClusterToken(token),
			kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond))
		if err != nil {
			t.Fatalf("Open %s: %v", p.ID, err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	return nodes
}

// TestBackupRestore backs a loaded 3-node cluster up from a follower while
// a writer runs, restores it into a new 3-node cluster, and checks that
// the new cluster serves the same data and hash at the backup's revision,
// with the lease and watches from after it.
func TestBackupRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		leaseID := loadCluster(t, leader)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := leader.Put(ctx, b(fmt.Sprint("w/", i%10)), b(fmt.Sprint(i))); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		})
		var buf bytes.Buffer
		info, err := c.Followers()[0].Backup(ctx, &buf)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(buf.Len()) || len(info.Members) != 3 {
			t.Fatalf("info %+v, %d bytes written", info, buf.Len())
		}
		old, err := leader.HashKV(info.Revision)
		if err != nil {
			t.Fatal(err)
		}
		status, err := kvstore.ReadBackupStatus(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if status.Revision != info.Revision || status.Hash != old.Hash || status.TotalSize != info.Size || status.Leases != 1 {
			t.Fatalf("status %+v, info %+v, cluster hash %08x", status, info, old.Hash)
		}
		want, err := leader.Get(ctx, b("\x00"), kvstore.WithRange(b("\xff")), kvstore.WithRev(info.Revision))
		if err != nil {
			t.Fatal(err)
		}
		if status.Keys != len(want.KVs) {
			t.Fatalf("status counts %d keys, the cluster had %d at %d", status.Keys, len(want.KVs), info.Revision)
		}

		nodes := restoreCluster(t, buf.Bytes(), "restored")
		waitLeaderOf(t, nodes)
		for _, n := range nodes {
			h, err := n.HashKV(info.Revision)
			if err != nil || h.Hash != old.Hash {
				t.Fatalf("%s: HashKV(%d) = %+v %v, want %08x", n.ID(), info.Revision, h, err, old.Hash)
			}
			got, err := n.Get(ctx, b("\x00"), kvstore.WithRange(b("\xff")), kvstore.WithRev(info.Revision))
			if err != nil || fmt.Sprint(got.KVs) != fmt.Sprint(want.KVs) {
				t.Fatalf("%s: data at %d differs: %v %v", n.ID(), info.Revision, got, err)
			}
			if got.Header.Revision != info.Revision {
				t.Fatalf("%s: revision %d, want %d", n.ID(), got.Header.Revision, info.Revision)
			}
		}
		ttl, err := nodes[1].TimeToLive(ctx, leaseID, true)
		if err != nil || ttl.TTL <= 0 || ttl.GrantedTTL != 60 || len(ttl.Keys) != 1 {
			t.Fatalf("lease after restore: %+v %v", ttl, err)
		}

		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := nodes[2].Watch(wctx, b("new"), kvstore.WithRev(info.Revision+1))
		if err != nil {
			t.Fatal(err)
		}
		put, err := nodes[0].Put(ctx, b("new"), b("1"))
		if err != nil {
			t.Fatal(err)
		}
		if put.Header.Revision != info.Revision+1 {
			t.Fatalf("first write after restore at revision %d, want %d", put.Header.Revision, info.Revision+1)
		}
		for resp := range ch {
			if len(resp.Events) > 0 {
				if ev := resp.Events[0]; string(ev.KV.Value) != "1" || ev.KV.ModRevision != info.Revision+1 {
					t.Fatalf("watch event %+v", ev)
				}
				break
			}
		}
	})
}

// waitLeaderOf waits for one of nodes to lead.
func waitLeaderOf(t *testing.T, nodes []*kvstore.Node) *kvstore.Node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.Status().IsLeader {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader in the restored cluster")
	return nil
}

// smallBackup backs up a small single-node cluster.
func smallBackup(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		n := c.WaitLeader()
		loadCluster(t, n)
		if _, err := n.Backup(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
	})
	return buf.Bytes()
}

// TestBackupCorrupt: a backup with a flipped byte anywhere, or cut short
// anywhere, is ErrCorruptBackup to ReadBackupStatus and Restore, and
// Restore leaves the dir absent.
func TestBackupCorrupt(t *testing.T) {
	good := smallBackup(t)
	if _, err := kvstore.ReadBackupStatus(bytes.NewReader(good)); err != nil {
		t.Fatalf("intact backup: %v", err)
	}
	var cases = map[string][]byte{"empty": nil, "trailing byte": append(bytes.Clone(good), 0)}
	for _, at := range []int{0, 5, 9, 12, 40, len(good) / 2, len(good) - 5, len(good) - 1} {
		flipped := bytes.Clone(good)
		flipped[at] ^= 0x10
		cases[fmt.Sprint("flip ", at)] = flipped
		cases[fmt.Sprint("cut at ", at)] = good[:at]
	}
	for name, data := range cases {
		if _, err := kvstore.ReadBackupStatus(bytes.NewReader(data)); !errors.Is(err, kvstore.ErrCorruptBackup) {
			t.Errorf("%s: ReadBackupStatus: %v, want ErrCorruptBackup", name, err)
		}
		dir := filepath.Join(t.TempDir(), "data")
		_, err := kvstore.Restore(bytes.NewReader(data), dir, kvstore.RestoreMember("a"),
			kvstore.RestoreCluster(kvstore.Peer{ID: "a", Address: "a"}), kvstore.RestoreClusterToken("t"))
		if !errors.Is(err, kvstore.ErrCorruptBackup) {
			t.Errorf("%s: Restore: %v, want ErrCorruptBackup", name, err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 0 {
			t.Errorf("%s: Restore left %v behind", name, entries)
		}
		empty := t.TempDir()
		_, err = kvstore.Restore(bytes.NewReader(data), empty, kvstore.RestoreMember("a"),
			kvstore.RestoreCluster(kvstore.Peer{ID: "a", Address: "a"}), kvstore.RestoreClusterToken("t"))
		if entries, _ := os.ReadDir(empty); !errors.Is(err, kvstore.ErrCorruptBackup) || len(entries) != 0 {
			t.Errorf("%s: Restore into an empty dir: %v, left %v", name, err, entries)
		}
	}
}

// TestRestoreRefuses: a non-empty dir, or missing options, are refused
// before anything is written.
func TestRestoreRefuses(t *testing.T) {
	good := smallBackup(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	members := kvstore.RestoreCluster(kvstore.Peer{ID: "a", Address: "a"})
	_, err := kvstore.Restore(bytes.NewReader(good), dir, kvstore.RestoreMember("a"), members, kvstore.RestoreClusterToken("t"))
	if !errors.Is(err, kvstore.ErrDataDirNotEmpty) {
		t.Fatalf("non-empty dir: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("dir changed: %v", entries)
	}
	for name, opts := range map[string][]kvstore.RestoreOption{
		"no member":     {members, kvstore.RestoreClusterToken("t")},
		"no token":      {kvstore.RestoreMember("a"), members},
		"no cluster":    {kvstore.RestoreMember("a"), kvstore.RestoreClusterToken("t")},
		"member absent": {kvstore.RestoreMember("b"), members, kvstore.RestoreClusterToken("t")},
		"duplicate ID": {kvstore.RestoreMember("a"), kvstore.RestoreClusterToken("t"),
			kvstore.RestoreCluster(kvstore.Peer{ID: "a", Address: "a"}, kvstore.Peer{ID: "a", Address: "b"})},
	} {
		empty := filepath.Join(t.TempDir(), "d")
		if _, err := kvstore.Restore(bytes.NewReader(good), empty, opts...); !errors.Is(err, kvstore.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
		if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: dir created", name)
		}
	}
}

// failingWriter fails after n bytes, or calls cancel once past them.
type failingWriter struct {
	n      int
	cancel func()
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		if w.cancel != nil {
			w.cancel()
			return len(p), nil
		}
		return 0, errors.New("disk gone")
	}
	return len(p), nil
}

// TestBackupInterrupted: a backup whose writer fails, or whose context
// ends midway, returns the error and leaves the node serving (and able to
// take the next backup).
func TestBackupInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		loadCluster(t, leader)
		n := c.Followers()[0]
		if _, err := n.Backup(ctx, &failingWriter{n: 100}); err == nil {
			t.Fatal("backup to a failing writer succeeded")
		}
		cctx, cancel := context.WithCancel(ctx)
		if _, err := n.Backup(cctx, &failingWriter{n: 100, cancel: cancel}); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled backup: %v", err)
		}
		mustPut(t, n, "after", "1")
		if got, err := n.Get(ctx, b("after")); err != nil || len(got.KVs) != 1 {
			t.Fatalf("get after interrupted backups: %v %v", got, err)
		}
		var buf bytes.Buffer
		if _, err := n.Backup(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		if _, err := kvstore.ReadBackupStatus(&buf); err != nil {
			t.Fatal(err)
		}
	})
}
