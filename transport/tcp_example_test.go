package transport_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kvstore/kvstore/transport"
)

// Two transports on loopback: one answers Calls, the other calls it. A node hands its
// transport to kvstore.Open with kvstore.WithTransport; in production add WithTLS (see
// LoadTLSConfig), WithLocalID and WithPeerIDCheck, and WithAdvertiseAddr when binding to all
// interfaces.
func ExampleNewTCP() {
	server, err := transport.NewTCP("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetHandler(func(_ context.Context, req []byte) []byte {
		return append([]byte("pong to "), req...)
	})

	client, err := transport.NewTCP("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := client.Call(ctx, "", server.LocalAddr(), []byte("ping"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	// Output: pong to ping
}
