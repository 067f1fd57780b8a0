package kvstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A backup of a running cluster, restored into the data dir of a new
// one-member cluster (its own token), which serves the backed-up state at
// its revision and goes on from there.
func ExampleRestore() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old := exampleNode(transport.NewNetwork(), "n1", singleMember)
	for _, v := range []string{"v1", "v2"} {
		if _, err := old.Put(ctx, []byte("config"), []byte(v)); err != nil {
			panic(err)
		}
	}
	var backup bytes.Buffer
	info, err := old.Backup(ctx, &backup)
	if err != nil {
		panic(err)
	}
	old.Close() // the old cluster is lost
	status, err := kvstore.ReadBackupStatus(bytes.NewReader(backup.Bytes()))
	if err != nil {
		panic(err)
	}
	fmt.Printf("backup at revision %d: %d key(s), hash %d\n", info.Revision, status.Keys, status.Hash)

	root, err := os.MkdirTemp("", "restore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	dir := filepath.Join(root, "m1")
	member := kvstore.Peer{ID: "m1", Address: "m1"}
	if _, err := kvstore.Restore(&backup, dir, kvstore.RestoreMember(member.ID),
		kvstore.RestoreCluster(member), kvstore.RestoreClusterToken("restored")); err != nil {
		panic(err)
	}
	tr, err := transport.NewNetwork().Join(member.Address)
	if err != nil {
		panic(err)
	}
	n, err := kvstore.Open(dir, kvstore.WithID(member.ID), kvstore.WithTransport(tr), kvstore.WithClusterToken("restored"),
		kvstore.WithRaftTiming(50*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer n.Close()
	resp, err := n.Get(ctx, []byte("config"))
	if err != nil {
		panic(err)
	}
	hash, err := n.HashKV(info.Revision)
	if err != nil {
		panic(err)
	}
	fmt.Printf("restored: config=%s at revision %d, hash %d\n", resp.KVs[0].Value, resp.Header.Revision, hash.Hash)
	put, err := n.Put(ctx, []byte("config"), []byte("v3"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("next write at revision %d\n", put.Header.Revision)
	// Output:
	// backup at revision 3: 1 key(s), hash 1797857728
	// restored: config=v2 at revision 3, hash 1797857728
	// next write at revision 4
}
