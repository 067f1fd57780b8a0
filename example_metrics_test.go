package kvstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A node's metrics go to the registry its host passes, labelled with the
// member's ID; a host serves the registry with promhttp.HandlerFor.
func ExampleWithMetrics() {
	reg := prometheus.NewRegistry()
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		log.Fatal(err)
	}
	n, err := kvstore.Open("",
		kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}),
		kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()),
		kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond),
		kvstore.WithMetrics(reg),
	)
	if err != nil {
		tr.Close()
		log.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.WaitLeader(ctx); err != nil {
		log.Fatal(err)
	}
	if err := n.Ready(ctx); err != nil {
		log.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, err := n.Put(ctx, []byte(k), []byte("v")); err != nil {
			log.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "etcd_mvcc_put_total", "etcd_debugging_mvcc_keys_total", "etcd_server_is_leader":
			m := f.GetMetric()[0]
			fmt.Printf("%s{%s=%q} %v\n", f.GetName(), m.GetLabel()[0].GetName(), m.GetLabel()[0].GetValue(),
				m.GetCounter().GetValue()+m.GetGauge().GetValue())
		}
	}
	// Output:
	// etcd_debugging_mvcc_keys_total{member="n1"} 3
	// etcd_mvcc_put_total{member="n1"} 3
	// etcd_server_is_leader{member="n1"} 1
}
