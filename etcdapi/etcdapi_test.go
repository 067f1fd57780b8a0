package etcdapi_test

import (
	"context"
	"errors"
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

// Close stops the gRPC servers of Serve, an open watch stream with them:
// Serve returns
// ErrServerClosed, the listener is closed, and Serve after Close refuses
// at once.
func TestServeClose(t *testing.T) {
	c := kvtest.NewCluster(t, 1)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := etcdapi.NewServer(c.WaitLeader())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{lis.Addr().String()}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := testContext(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// An open watch stream, which Close ends rather than waits for.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	events := cli.Watch(clientv3.WithRequireLeader(wctx), "k")
	if _, err := cli.Put(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	if resp := <-events; resp.Err() != nil || len(resp.Events) != 1 {
		t.Fatalf("watch before Close: %+v %v", resp, resp.Err())
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, etcdapi.ErrServerClosed) {
			t.Errorf("Serve after Close: %v, want ErrServerClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve still serves after Close")
	}
	if conn, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Error("the listener still accepts after Close")
	}
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(other); !errors.Is(err, etcdapi.ErrServerClosed) {
		t.Errorf("Serve on a closed Server: %v, want ErrServerClosed", err)
	}
	if conn, err := net.DialTimeout("tcp", other.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Error("Serve on a closed Server left its listener open")
	}
}
