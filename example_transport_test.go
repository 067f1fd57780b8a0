package kvstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A 3-node cluster in one process: each node joins an in-memory network
// (transport.NewNetwork) under its ID, and the three found the cluster
// together with WithBootstrap. A write through one member is read back
// through another.
func Example() {
	network := transport.NewNetwork()
	peers := []kvstore.Peer{
		{ID: "n1", Address: "n1"},
		{ID: "n2", Address: "n2"},
		{ID: "n3", Address: "n3"},
	}
	var nodes []*kvstore.Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	for _, p := range peers {
		tr, err := network.Join(p.Address)
		if err != nil {
			log.Fatal(err)
		}
		n, err := kvstore.Open("",
			kvstore.WithID(p.ID),
			kvstore.WithTransport(tr), // the node owns tr from here on
			kvstore.WithBootstrap(peers...),
			kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
			// Short timeouts elect a leader quickly inside one process;
			// between machines keep the defaults.
			kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond),
		)
		if err != nil {
			tr.Close()
			log.Fatal(err)
		}
		nodes = append(nodes, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := nodes[0].WaitLeader(ctx); err != nil {
		log.Fatal(err)
	}
	put, err := nodes[0].Put(ctx, []byte("config/mode"), []byte("blue"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("put at revision", put.Header.Revision)

	// A linearizable Get on another member sees every acknowledged write.
	get, err := nodes[2].Get(ctx, []byte("config/mode"))
	if err != nil {
		log.Fatal(err)
	}
	kv := get.KVs[0]
	fmt.Printf("%s reads %s = %s (version %d, mod revision %d)\n",
		get.Header.MemberID, kv.Key, kv.Value, kv.Version, kv.ModRevision)
	// Output:
	// put at revision 2
	// n3 reads config/mode = blue (version 1, mod revision 2)
}

// One member of a cluster of processes on separate machines: the transport
// is TCP with mutual TLS, and each member's certificate names its ID (see
// the transport package). The other members run the same program with
// their own ID, address and files; Peer.Address is the address the
// transport advertises. A member restarted later reopens its data dir,
// which remembers its cluster: WithBootstrap is then ignored.
func Example_tcp() {
	tlsConfig, err := transport.LoadTLSConfig("n1.crt", "n1.key", "ca.crt")
	if err != nil {
		log.Fatal(err)
	}
	tr, err := transport.NewTCP("10.0.0.1:2380",
		transport.WithTLS(tlsConfig),
		transport.WithLocalID("n1"),
		transport.WithPeerIDCheck(),
	)
	if err != nil {
		log.Fatal(err)
	}
	node, err := kvstore.Open("/var/lib/myservice/kvstore",
		kvstore.WithID("n1"),
		kvstore.WithTransport(tr),
		kvstore.WithBootstrap(
			kvstore.Peer{ID: "n1", Address: "10.0.0.1:2380"},
			kvstore.Peer{ID: "n2", Address: "10.0.0.2:2380"},
			kvstore.Peer{ID: "n3", Address: "10.0.0.3:2380"},
		),
	)
	if err != nil {
		tr.Close() // a failed Open leaves the transport to its caller
		log.Fatal(err)
	}
	defer node.Close()
	// Serve the host program's clients with node.Put, node.Get, ...
}
