package etcdapi_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/transport"
)

// A program serves etcd's API from the node it embeds, and etcd's own
// client talks to it. Serve makes a gRPC server of its own; Close stops it.
func ExampleServer_Serve() {
	dir, err := os.MkdirTemp("", "etcdapi-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		panic(err)
	}
	node, err := kvstore.Open(dir, kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}))
	if err != nil {
		panic(err)
	}
	defer node.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := etcdapi.NewServer(node)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{lis.Addr().String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "greeting", "hello, etcd clients"); err != nil {
		panic(err)
	}
	resp, err := cli.Get(ctx, "greeting")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", resp.Kvs[0].Value)
	cli.Close()

	srv.Close() // before the node
	fmt.Println(<-served)
	// Output:
	// hello, etcd clients
	// etcdapi: server closed
}
