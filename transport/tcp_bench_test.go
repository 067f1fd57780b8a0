package transport_test

import (
	"context"
	"testing"

	"github.com/kvstore/kvstore/transport"
)

// BenchmarkTCPCall measures Call round trips over loopback TCP, plain and with mutual TLS, one
// at a time and with 64 callers in flight (the shape of a node forwarding many clients' writes
// to its leader). The request and reply are 128 bytes, about a forwarded Put.
//
//	go test -run '^$' -bench BenchmarkTCPCall -count 5 ./transport/
func BenchmarkTCPCall(b *testing.B) {
	ca := newCA(b, "bench CA")
	for _, sec := range []struct {
		name string
		opts func(name string) []transport.Option
	}{
		{"plain", func(string) []transport.Option { return nil }},
		{"tls", func(name string) []transport.Option { return []transport.Option{withFilesTLS(b, ca, name)} }},
	} {
		client, server := newTCP(b, sec.opts("client")...), newTCP(b, sec.opts("server")...)
		server.SetHandler(func(_ context.Context, req []byte) []byte { return req })
		req := make([]byte, 128)
		call := func(b *testing.B) {
			if _, err := client.Call(context.Background(), "", server.LocalAddr(), req); err != nil {
				b.Fatal(err)
			}
		}
		call(b) // dial outside the measurement
		b.Run(sec.name+"/sequential", func(b *testing.B) {
			for b.Loop() {
				call(b)
			}
		})
		b.Run(sec.name+"/parallel64", func(b *testing.B) {
			b.SetParallelism(64)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call(b)
				}
			})
		})
	}
}
