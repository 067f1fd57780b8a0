package main

import (
	"net"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/testcerts"
	"github.com/kvstore/kvstore/transport"
)

// cluster is an in-process cluster on one in-memory network, built with the
// public API only.
type cluster struct {
	nodes []*kvstore.Node
	dir   string // the nodes' data dirs live here; "" with memory storage
}

// startCluster opens cfg.nodes nodes bootstrapped together, under a fresh
// directory in root for disk storage, and waits until every node knows the
// same leader.
func startCluster(ctx context.Context, cfg *config, root string) (*cluster, error) {
	c := &cluster{}
	if cfg.storage == "disk" {
		dir, err := os.MkdirTemp(root, "cluster-")
		if err != nil {
			return nil, err
		}
		c.dir = dir
	}
	peers, transports, err := newTransports(cfg)
	if err != nil {
		return nil, errors.Join(err, c.close())
	}
	hb, el, lease, commit := cfg.raftTiming()
	var registry *prometheus.Registry // nothing scrapes it: the cost measured is the nodes' own
	if cfg.metrics {
		registry = prometheus.NewRegistry()
	}
	for i, p := range peers {
		tr := transports[i]
		opts := []kvstore.Option{
			kvstore.WithID(p.ID), kvstore.WithTransport(tr), kvstore.WithBootstrap(peers...),
			cfg.storageOption(), kvstore.WithRaftTiming(hb, el, lease, commit),
			kvstore.WithQuotaBytes(cfg.quotaBytes), cfg.autoCompactionOption(),
			kvstore.WithEagerAppend(cfg.eager),
			kvstore.WithSyncRing(cfg.syncRing),
			kvstore.WithSegmentPrewrite(cfg.prewrite),
		}
		if registry != nil {
			opts = append(opts, kvstore.WithMetrics(registry))
		}
		dir := ""
		if c.dir != "" {
			dir = filepath.Join(c.dir, p.ID)
		}
		n, err := kvstore.Open(dir, opts...)
		if err != nil {
			for _, t := range transports[i:] {
				t.Close()
			}
			return nil, errors.Join(fmt.Errorf("opening %s: %w", p.ID, err), c.close())
		}
		c.nodes = append(c.nodes, n)
	}
	if err := c.waitLeader(ctx); err != nil {
		return nil, errors.Join(err, c.close())
	}
	return c, nil
}

// waitLeader waits until one node leads and every node names it.
func (c *cluster) waitLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if l, _ := c.leader(); l != nil {
			lid, _ := l.Leader()
			agreed := true
			for _, n := range c.nodes {
				id, _ := n.Leader()
				agreed = agreed && id == lid
			}
			if agreed {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a leader: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// leader returns the node that leads now and its ID, or nil.
func (c *cluster) leader() (*kvstore.Node, string) { return c.pick(true) }

// follower returns a node that does not lead now and its ID, or nil.
func (c *cluster) follower() (*kvstore.Node, string) { return c.pick(false) }

func (c *cluster) pick(leader bool) (*kvstore.Node, string) {
	for i, n := range c.nodes {
		if n.IsLeader() == leader {
			return n, nodeID(i)
		}
	}
	return nil, ""
}

// close closes every node and removes the data dirs.
func (c *cluster) close() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.Close())
	}
	if c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}

// nodeID names the i-th node (from 0): n1, n2, ...; it is also its address.
func nodeID(i int) string { return fmt.Sprint("n", i+1) }

// newTransports makes one transport per node, of the kind cfg names:
// memory (one in-process network), tcp (loopback, each on a port-0
// listener) or tls (tcp with mutual TLS 1.3 from a throwaway CA, the
// server ID checked).
func newTransports(cfg *config) ([]kvstore.Peer, []transport.Transport, error) {
	peers := make([]kvstore.Peer, cfg.nodes)
	trs := make([]transport.Transport, 0, cfg.nodes)
	fail := func(err error) ([]kvstore.Peer, []transport.Transport, error) {
		for _, t := range trs {
			t.Close()
		}
		return nil, nil, err
	}
	var network *transport.Network
	var ca *testcerts.CA
	switch cfg.transport {
	case "memory":
		network = transport.NewNetwork()
	case "tls":
		var err error
		if ca, err = testcerts.NewCA("bench CA"); err != nil {
			return fail(err)
		}
	}
	for i := range peers {
		id := nodeID(i)
		if network != nil {
			peers[i] = kvstore.Peer{ID: id, Address: id}
			tr, err := network.Join(id)
			if err != nil {
				return fail(err)
			}
			trs = append(trs, tr)
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		opts := []transport.Option{transport.WithListener(ln)}
		if ca != nil {
			tc, err := ca.TLSConfig(id, "127.0.0.1")
			if err != nil {
				ln.Close()
				return fail(err)
			}
			opts = append(opts, transport.WithTLS(tc), transport.WithLocalID(raft.ServerID(id)), transport.WithPeerIDCheck())
		}
		tr, err := transport.NewTCP("", opts...)
		if err != nil {
			ln.Close()
			return fail(err)
		}
		trs = append(trs, tr)
		peers[i] = kvstore.Peer{ID: id, Address: string(tr.LocalAddr())}
	}
	return peers, trs, nil
}
