package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc"
)

// healthTimeout bounds one health or probe request's checks.
const healthTimeout = 5 * time.Second

// newHTTPHandler returns the HTTP endpoints of a member, as etcd serves
// them: /metrics, /health (etcd's JSON), /version, /livez and /readyz (etcd 3.6's
// probes: "ok", or 503 with the failed checks; ?verbose lists every check,
// ?exclude=NAME leaves one out), and /debug/pprof/ with pprof.
func newHTTPHandler(node *kvstore.Node, reg *prometheus.Registry, pprofOn bool, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.With("component", "metrics").Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		checks := node.ReadyChecks()
		if r.URL.Query().Get("serializable") == "true" {
			checks = slices.DeleteFunc(checks, func(c kvstore.HealthCheck) bool { return c.Name == "linearizable_read" })
		}
		body := struct {
			Health string `json:"health"`
			Reason string `json:"reason"`
		}{Health: "true"}
		status := http.StatusOK
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				body.Health, body.Reason, status = "false", c.Name+": "+err.Error(), http.StatusServiceUnavailable
				break
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("GET /version", serveVersion)
	mux.HandleFunc("GET /livez", probe(node.LiveChecks))
	mux.HandleFunc("GET /readyz", probe(node.ReadyChecks))
	if pprofOn {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// probe answers /livez or /readyz from checks.
func probe(checks func() []kvstore.HealthCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		q := r.URL.Query()
		excluded := q["exclude"]
		var lines strings.Builder
		failed := false
		for _, c := range checks() {
			if slices.Contains(excluded, c.Name) {
				continue
			}
			if err := c.Check(ctx); err != nil {
				failed = true
				fmt.Fprintf(&lines, "[-]%s failed: %v\n", c.Name, err)
				continue
			}
			fmt.Fprintf(&lines, "[+]%s ok\n", c.Name)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if failed {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, lines.String())
			return
		}
		if q.Has("verbose") {
			fmt.Fprint(w, lines.String())
		}
		fmt.Fprintln(w, "ok")
	}
}

// grpcOrHTTP sends gRPC requests (HTTP/2 with a gRPC content type) to gs
// and the rest to h, so that one port serves both, as etcd's does.
// grpc-go's ServeHTTP runs gRPC on net/http's HTTP/2 server: slower than
// grpc.Server.Serve on a listener of its own, but it needs no connection
// multiplexer guessing the protocol from the first bytes (etcd's cmux),
// and it serves plaintext (HTTP/2 with prior knowledge, which gRPC
// clients speak) and TLS alike.
func grpcOrHTTP(gs *grpc.Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveVersion answers /version with etcd's JSON: the etcd API version
// this server speaks (what Status reports), the cluster's as etcd gives
// it (major.minor.0; every member speaks the same), and "unknown" for the
// storage version: kvstore keeps no etcd storage schema.
func serveVersion(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(version.Versions{
		Server:  version.Version,
		Cluster: version.Cluster(version.Version) + ".0",
		Storage: "unknown",
	})
}
