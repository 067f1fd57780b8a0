package transport_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

// cluster joins one serving transport per address.
func cluster(t *testing.T, n *transport.Network, addrs ...raft.ServerAddress) map[raft.ServerAddress]*transport.MemTransport {
	t.Helper()
	m := make(map[raft.ServerAddress]*transport.MemTransport)
	for _, a := range addrs {
		m[a] = join(t, n, a)
		serve(m[a])
	}
	return m
}

// expectReach checks every ordered pair of addrs: calls succeed, and Blocked reports the link
// open, exactly when ok(from, to). It suits symmetric faults (partitions, isolation), where a
// call's request and reply are dropped or delivered alike.
func expectReach(t *testing.T, n *transport.Network, nodes map[raft.ServerAddress]*transport.MemTransport, addrs []raft.ServerAddress, ok func(from, to raft.ServerAddress) bool) {
	t.Helper()
	for _, from := range addrs {
		for _, to := range addrs {
			if n.Blocked(from, to) == ok(from, to) {
				t.Errorf("Blocked(%s, %s) = %v, want %v", from, to, n.Blocked(from, to), !ok(from, to))
			}
			if ok(from, to) {
				callOK(t, nodes[from], to)
			} else {
				callLost(t, nodes[from], to)
			}
		}
	}
}

func TestPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		addrs := []raft.ServerAddress{"a", "b", "c", "d", "e"}
		nodes := cluster(t, n, addrs...)

		// d and e are not listed: they form a third group together.
		n.Partition([]raft.ServerAddress{"a", "b"}, []raft.ServerAddress{"c"})
		group := map[raft.ServerAddress]int{"a": 1, "b": 1, "c": 2, "d": 0, "e": 0}
		expectReach(t, n, nodes, addrs, func(from, to raft.ServerAddress) bool {
			return group[from] == group[to]
		})

		// A new partition replaces the old one.
		n.Partition([]raft.ServerAddress{"a"})
		expectReach(t, n, nodes, addrs, func(from, to raft.ServerAddress) bool {
			return (from == "a") == (to == "a")
		})

		n.Partition() // no groups: no partition
		expectReach(t, n, nodes, addrs, func(_, _ raft.ServerAddress) bool { return true })
	})
}

func TestIsolate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		addrs := []raft.ServerAddress{"a", "b", "c"}
		nodes := cluster(t, n, addrs...)

		n.Isolate("a")
		expectReach(t, n, nodes, addrs, func(from, to raft.ServerAddress) bool {
			return from == to || (from != "a" && to != "a")
		})

		// Isolation belongs to the address: it survives a restart of the node.
		if err := nodes["a"].Close(); err != nil {
			t.Fatal(err)
		}
		nodes["a"] = join(t, n, "a")
		serve(nodes["a"])
		callLost(t, nodes["a"], "b")
		callLost(t, nodes["b"], "a")

		n.Heal()
		expectReach(t, n, nodes, addrs, func(_, _ raft.ServerAddress) bool { return true })
	})
}

// A cut request direction loses the request: the handler never runs.
func TestCutRequestDirection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		ca, cb := serve(a), serve(b)

		n.Cut("a", "b")
		if !n.Blocked("a", "b") || n.Blocked("b", "a") {
			t.Fatalf("after Cut(a, b): Blocked(a, b) = %v, Blocked(b, a) = %v", n.Blocked("a", "b"), n.Blocked("b", "a"))
		}
		callLost(t, a, "b")
		if cb.n.Load() != 0 {
			t.Fatal("handler ran although the request direction is cut")
		}
		// b→a: request delivered, but its reply travels a→b and is lost.
		callLost(t, b, "a")
		if ca.n.Load() != 1 {
			t.Fatalf("a's handler ran %d times, want 1", ca.n.Load())
		}
	})
}

// A cut reply direction loses only the answer: the handler runs, the caller gets ErrUnreachable.
func TestCutReplyDirection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		var got []string
		b.SetHandler(func(_ context.Context, req []byte) []byte {
			got = append(got, string(req))
			return []byte("done")
		})

		n.Cut("b", "a")
		reply, err := a.Call(context.Background(), "", "b", []byte("write-1"))
		if !errors.Is(err, transport.ErrUnreachable) || reply != nil {
			t.Fatalf("Call = %q, %v; want ErrUnreachable", reply, err)
		}
		if len(got) != 1 || got[0] != "write-1" {
			t.Fatalf("handler saw %q, want the request processed once", got)
		}

		n.Heal()
		if reply, err := a.Call(context.Background(), "", "b", []byte("write-2")); err != nil || string(reply) != "done" {
			t.Fatalf("after Heal: Call = %q, %v", reply, err)
		}
	})
}

func TestHealRemovesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		addrs := []raft.ServerAddress{"a", "b", "c", "d"}
		nodes := cluster(t, n, addrs...)

		n.Partition([]raft.ServerAddress{"a", "b"})
		n.Isolate("c")
		n.Cut("b", "d")
		n.Cut("d", "a")
		callLost(t, nodes["a"], "c")
		callLost(t, nodes["b"], "d")

		n.Heal()
		expectReach(t, n, nodes, addrs, func(_, _ raft.ServerAddress) bool { return true })
	})
}

// Faults also apply to raft RPCs, with the same request/reply semantics.
func TestFaultsApplyToRaftRPCs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := transport.NewNetwork()
		a, b := join(t, n, "a"), join(t, n, "b")
		delivered := respondAll(t, b)

		var resp raft.RequestVoteResponse
		n.Cut("a", "b")
		if err := a.RequestVote("b", "b", &raft.RequestVoteRequest{Term: 1}, &resp); !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("request cut: err = %v, want ErrUnreachable", err)
		}
		synctest.Wait()
		if delivered.Load() != 0 {
			t.Fatal("RPC delivered although the request direction is cut")
		}

		n.Heal()
		n.Cut("b", "a")
		if err := a.RequestVote("b", "b", &raft.RequestVoteRequest{Term: 1}, &resp); !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("reply cut: err = %v, want ErrUnreachable", err)
		}
		if delivered.Load() != 1 {
			t.Fatalf("RPC delivered %d times with the reply direction cut, want 1", delivered.Load())
		}

		n.Heal()
		n.Isolate("b")
		if err := a.RequestVote("b", "b", &raft.RequestVoteRequest{Term: 1}, &resp); !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("isolated: err = %v, want ErrUnreachable", err)
		}
		n.Heal()
		if err := a.RequestVote("b", "b", &raft.RequestVoteRequest{Term: 1}, &resp); err != nil || !resp.Granted {
			t.Fatalf("healed: err = %v, granted = %v", err, resp.Granted)
		}
	})
}
