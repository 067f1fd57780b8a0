package etcdapi_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/kvtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// testCluster is a kvtest cluster whose every member serves etcd's API on
// a loopback TCP listener.
type testCluster struct {
	*kvtest.Cluster
	t         *testing.T
	endpoints []string
	stops     []func() // stops serving member i; nil while it does not
}

// newCluster starts n members, serves the API from each and waits for a
// leader. Its cleanup stops the gRPC servers and the etcdapi servers
// before kvtest closes the nodes.
func newCluster(t *testing.T, n int, opts ...kvtest.Option) *testCluster {
	t.Helper()
	c := &testCluster{Cluster: kvtest.NewCluster(t, n, opts...), t: t, endpoints: make([]string, n), stops: make([]func(), n)}
	for i := range n {
		c.serve(i, "127.0.0.1:0")
	}
	t.Cleanup(func() {
		for i := range c.stops {
			c.stopServing(i)
		}
	})
	c.WaitLeader()
	return c
}

// serve serves member i's node on addr.
func (c *testCluster) serve(i int, addr string) {
	c.t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	srv := etcdapi.NewServer(c.Node(i), etcdapi.WithAdvertiseClientURLs("http://"+lis.Addr().String()))
	gs := grpc.NewServer(etcdapi.ServerOptions()...)
	srv.Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		gs.Serve(lis)
	}()
	c.endpoints[i] = lis.Addr().String()
	c.stops[i] = func() {
		gs.Stop()
		<-served
		if err := srv.Close(); err != nil {
			c.t.Errorf("Close: %v", err)
		}
	}
}

func (c *testCluster) stopServing(i int) {
	if c.stops[i] != nil {
		c.stops[i]()
		c.stops[i] = nil
	}
}

// stop stops serving member i and stops its node.
func (c *testCluster) stop(i int) {
	c.stopServing(i)
	c.Stop(i)
}

// restart restarts member i's node and serves it on its old endpoint.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	c.Restart(i)
	c.serve(i, c.endpoints[i])
}

// client returns a clientv3 client of the given members (all if none),
// closed by the test's cleanup.
func (c *testCluster) client(t *testing.T, members ...int) *clientv3.Client {
	t.Helper()
	eps := c.endpoints
	if len(members) > 0 {
		eps = nil
		for _, i := range members {
			eps = append(eps, c.endpoints[i])
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// testContext is bounded by the test's deadline, or by a minute.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// testContextCancel is testContext with its cancel.
func testContextCancel(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx, cancel
}
