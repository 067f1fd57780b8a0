package main

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// TestMetricsEndpoint checks that /metrics serves the node's registry in
// Prometheus' text format, and that without a registry there is none.
func TestMetricsEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		counts := new(refusals)
		reg := newRegistry(counts)
		c := kvtest.NewCluster(t, 1, kvtest.WithNodeOptions(kvstore.WithMetrics(reg)))
		n := c.WaitLeader()
		s := serve(t, n, apiOptions{metrics: reg, refusals: counts})
		s.call("PUT", "/v1/kv/k", "v", http.StatusOK, nil)
		counts.streams.Add(2)
		status, body := s.do("GET", "/metrics", "")
		text := string(body)
		if status != http.StatusOK {
			t.Fatalf("/metrics: %d %s", status, body)
		}
		for _, want := range []string{
			"# TYPE etcd_server_has_leader gauge\n",
			`etcd_server_has_leader{member="n1"} 1` + "\n",
			`etcd_mvcc_put_total{member="n1"} 1` + "\n",
			"# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n",
			"kvstore_http_refused_streams_total 2\n",
			"\ngo_goroutines ",
			"\nprocess_cpu_seconds_total ",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if status, _ := serve(t, n, apiOptions{}).do("GET", "/metrics", ""); status != http.StatusNotFound {
			t.Errorf("/metrics without a registry: %d, want 404", status)
		}
	})
}

// TestPprof checks that Go's profiles are served under /debug/pprof/ only
// when enabled.
func TestPprof(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		n := c.WaitLeader()
		on := serve(t, n, apiOptions{pprof: true})
		for path, want := range map[string]string{
			"/debug/pprof/":                  "goroutine",
			"/debug/pprof/goroutine?debug=1": "goroutine profile:",
			"/debug/pprof/cmdline":           "",
			"/debug/pprof/heap?debug=1":      "heap profile:",
		} {
			status, body := on.do("GET", path, "")
			if status != http.StatusOK || !strings.Contains(string(body), want) {
				t.Errorf("GET %s with pprof: %d, body has %q: %v", path, status, want, strings.Contains(string(body), want))
			}
		}
		off := serve(t, n, apiOptions{})
		if status, _ := off.do("GET", "/debug/pprof/", ""); status != http.StatusNotFound {
			t.Errorf("/debug/pprof/ without --enable-pprof: %d, want 404", status)
		}
	})
}

// TestRunDiagnostics runs the program with --enable-pprof: /metrics,
// /livez, /readyz and /debug/pprof/ are served on the client API; without
// the flag there are no profiles.
func TestRunDiagnostics(t *testing.T) {
	for _, pprof := range []bool{true, false} {
		t.Run(map[bool]string{true: "pprof", false: "default"}[pprof], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				args := []string{"--id", "n1", "--data-dir", t.TempDir(), "--listen", "10.0.0.1:2380", "--initial-cluster", "n1=10.0.0.1:2380"}
				if pprof {
					args = append(args, "--enable-pprof")
				}
				p := startProgram(t, transport.NewNetwork(), args, join)
				<-p.ready
				s := p.client()
				eventually(t, time.Minute, "the node to be ready", func() bool {
					status, _ := s.do("GET", "/readyz", "")
					return status == http.StatusOK
				})
				if status, body := s.do("GET", "/livez", ""); status != http.StatusOK || string(body) != "ok\n" {
					t.Fatalf("/livez: %d %q", status, body)
				}
				status, body := s.do("GET", "/metrics", "")
				if status != http.StatusOK || !strings.Contains(string(body), `etcd_server_is_leader{member="n1"} 1`) {
					t.Fatalf("/metrics: %d\n%s", status, body)
				}
				want := http.StatusNotFound
				if pprof {
					want = http.StatusOK
				}
				if status, _ := s.do("GET", "/debug/pprof/", ""); status != want {
					t.Fatalf("/debug/pprof/: %d, want %d", status, want)
				}
			})
		})
	}
}
