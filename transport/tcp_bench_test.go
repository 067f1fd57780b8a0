package transport_test

import (
	"context"
	"testing"

	"github.com/hashicorp/raft"

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

// BenchmarkTCPAppendEntries measures raft's AppendEntries round trip over loopback TCP with a
// consumer that answers at once: the transport's own cost on the path every write waits for
// (encode, send, decode, hand-over to raft, answer). A batch of 16 entries of 300 bytes is
// about what a leader under 64 writers sends per request; "heartbeat" takes the fast path.
//
//	go test -run '^$' -bench BenchmarkTCPAppendEntries -count 5 ./transport/
func BenchmarkTCPAppendEntries(b *testing.B) {
	client, server := newTCP(b), newTCP(b)
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case rpc := <-server.Consumer():
				rpc.Respond(favourable(rpc))
			case <-stop:
				return
			}
		}
	}()
	server.SetHeartbeatHandler(func(rpc raft.RPC) { rpc.Respond(favourable(rpc)) })
	header := raft.RPCHeader{Addr: []byte(client.LocalAddr())}
	entries := make([]*raft.Log, 16)
	for i := range entries {
		entries[i] = &raft.Log{Index: uint64(i + 2), Term: 2, Type: raft.LogCommand, Data: make([]byte, 300)}
	}
	for _, c := range []struct {
		name string
		req  *raft.AppendEntriesRequest
	}{
		{"entries16", &raft.AppendEntriesRequest{RPCHeader: header, Term: 2, PrevLogEntry: 1, PrevLogTerm: 2, Entries: entries, LeaderCommitIndex: 1}},
		{"heartbeat", &raft.AppendEntriesRequest{RPCHeader: header, Term: 2}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var resp raft.AppendEntriesResponse
			for b.Loop() {
				if err := client.AppendEntries("server", server.LocalAddr(), c.req, &resp); err != nil || !resp.Success {
					b.Fatalf("%+v %v", resp, err)
				}
			}
		})
	}
}
