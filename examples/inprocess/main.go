// Command inprocess runs a three-node kvstore cluster inside one process:
// it writes, does a compare-and-swap, reads from a follower, stops the
// leader, shows a new leader elected with every acknowledged write intact,
// and restarts the old leader to show it catch up.
//
//	go run ./examples/inprocess
//
// The nodes keep their state in a temporary directory (raft-wal, fsync'd)
// and talk over kvstore's in-memory network; swap in a TCP transport and
// separate processes and nothing else changes.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// cluster is the demo's three nodes and what it needs to restart one.
type cluster struct {
	dir     string
	network *transport.Network
	peers   []kvstore.Peer
	nodes   map[string]*kvstore.Node
}

func (c *cluster) start(p kvstore.Peer) error {
	tr, err := c.network.Join(p.Address)
	if err != nil {
		return err
	}
	n, err := kvstore.Open(filepath.Join(c.dir, p.ID),
		kvstore.WithID(p.ID), kvstore.WithTransport(tr), kvstore.WithBootstrap(c.peers...),
		// Fast failure detection for the demo: a new leader within ~200ms.
		kvstore.WithRaftTiming(100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 0))
	if err != nil {
		tr.Close()
		return err
	}
	c.nodes[p.ID] = n
	return nil
}

func (c *cluster) leader(ctx context.Context) (*kvstore.Node, error) {
	for {
		for _, n := range c.nodes {
			if n.IsLeader() {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *cluster) follower(leader *kvstore.Node) *kvstore.Node {
	for _, n := range c.nodes {
		if n != leader {
			return n
		}
	}
	return nil
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "kvstore-inprocess-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := &cluster{dir: dir, network: transport.NewNetwork(), nodes: map[string]*kvstore.Node{}}
	for _, id := range []string{"n1", "n2", "n3"} {
		c.peers = append(c.peers, kvstore.Peer{ID: id, Address: id})
	}
	defer func() {
		for _, n := range c.nodes {
			n.Close()
		}
	}()
	start := time.Now()
	for _, p := range c.peers {
		if err := c.start(p); err != nil {
			return err
		}
	}
	leader, err := c.leader(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("cluster of 3 up in %v, leader %s\n", time.Since(start).Round(time.Millisecond), leader.ID())

	follower := c.follower(leader)
	var acknowledged []string
	for i := range 5 {
		key := fmt.Sprintf("config/%d", i)
		resp, err := follower.Put(ctx, []byte(key), []byte("v1"))
		if err != nil {
			return err
		}
		acknowledged = append(acknowledged, key)
		fmt.Printf("put %s through follower %s at revision %d\n", key, follower.ID(), resp.Header.Revision)
	}

	// Compare-and-swap: set config/0 to v2 only if it is still v1.
	txn, err := leader.Txn(ctx).
		If(kvstore.Compare(kvstore.Value([]byte("config/0")), "=", "v1")).
		Then(kvstore.OpPut([]byte("config/0"), []byte("v2"))).
		Else(kvstore.OpGet([]byte("config/0"))).
		Commit()
	if err != nil {
		return err
	}
	fmt.Printf("compare-and-swap config/0 v1→v2: succeeded=%v at revision %d\n", txn.Succeeded, txn.Header.Revision)

	get, err := follower.Get(ctx, []byte("config/"), kvstore.WithPrefix())
	if err != nil {
		return err
	}
	fmt.Printf("linearizable read on follower %s: %d keys, config/0=%s\n", follower.ID(), get.Count, get.KVs[0].Value)

	old := leader.ID()
	if err := leader.Close(); err != nil {
		return err
	}
	delete(c.nodes, old)
	stopped := time.Now()
	fmt.Printf("stopped leader %s\n", old)
	if leader, err = c.leader(ctx); err != nil {
		return err
	}
	fmt.Printf("new leader %s elected in %v\n", leader.ID(), time.Since(stopped).Round(time.Millisecond))
	get, err = leader.Get(ctx, []byte("config/"), kvstore.WithPrefix())
	if err != nil {
		return err
	}
	if get.Count != int64(len(acknowledged)) || string(get.KVs[0].Value) != "v2" {
		return fmt.Errorf("acknowledged writes lost: %d keys, config/0=%s", get.Count, get.KVs[0].Value)
	}
	fmt.Printf("all %d acknowledged writes present on %s, config/0=%s\n", len(acknowledged), leader.ID(), get.KVs[0].Value)
	if _, err := leader.Put(ctx, []byte("config/after-failover"), []byte("v1")); err != nil {
		return err
	}

	for _, p := range c.peers {
		if p.ID == old {
			if err := c.start(p); err != nil {
				return err
			}
		}
	}
	get, err = c.nodes[old].Get(ctx, []byte("config/"), kvstore.WithPrefix(), kvstore.WithCountOnly())
	if err != nil {
		return err
	}
	st := c.nodes[old].Status()
	fmt.Printf("restarted %s from its data dir: caught up to revision %d with %d keys (leader %s)\n",
		old, st.Revision, get.Count, st.LeaderID)
	return nil
}
