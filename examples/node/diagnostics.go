package main

import (
	"log/slog"
	"net/http/pprof"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The diagnostic endpoints: GET /metrics, the node's Prometheus registry in
// the text exposition format (METRICS.md at the repository's root lists
// the metrics), and, with --enable-pprof only, Go's profiles under
// /debug/pprof/ (net/http/pprof), as etcd's --enable-pprof serves them on
// its client port. Both go through the client listener and its limits;
// neither needs the node to have a leader.

// newRegistry returns the process's metric registry: the node registers
// its own metrics on it (kvstore.WithMetrics); here go the Go runtime's and
// the process's, which every Prometheus exporter has, and the API's
// refusals.
func newRegistry(counts *refusals) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, n *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(n.Load()) })
	}
	reg.MustRegister(
		counter("kvstore_http_refused_connections_total", "Client connections refused over --client-max-connections (answered 503).", &counts.connections),
		counter("kvstore_http_refused_streams_total", "Watch streams refused over --max-concurrent-streams (answered 429).", &counts.streams),
		counter("kvstore_http_slow_bodies_total", "Request bodies cut off by --client-body-timeout (answered 408).", &counts.slowBodies),
		counter("kvstore_http_large_bodies_total", "Requests refused for the size of their body or write (answered 413).", &counts.largeBodies),
	)
	return reg
}

// routeDiagnostics adds /metrics when the API has a registry to serve,
// and /debug/pprof/ when asked for.
func (a *api) routeDiagnostics() {
	if a.opts.metrics != nil {
		a.mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.metrics, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(a.opts.logger.With("component", "metrics").Handler(), slog.LevelWarn),
		}))
	}
	if a.opts.pprof {
		// pprof.Index serves every named profile under /debug/pprof/
		// (heap, goroutine, block, mutex, allocs, threadcreate); the
		// other four are handlers of their own.
		a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		a.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
}
