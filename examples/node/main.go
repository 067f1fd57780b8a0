// Command node runs one member of a kvstore cluster as a process, with an
// HTTP JSON API for clients (curl included).
//
// Found a three-member cluster on one machine (each in its own shell):
//
//	node --id n1 --data-dir /tmp/n1 --listen 127.0.0.1:2380 --client-listen 127.0.0.1:2379 \
//	     --initial-cluster n1=127.0.0.1:2380,n2=127.0.0.1:2381,n3=127.0.0.1:2382
//	node --id n2 --data-dir /tmp/n2 --listen 127.0.0.1:2381 --client-listen 127.0.0.1:3379 \
//	     --initial-cluster n1=127.0.0.1:2380,n2=127.0.0.1:2381,n3=127.0.0.1:2382
//	node --id n3 --data-dir /tmp/n3 --listen 127.0.0.1:2382 --client-listen 127.0.0.1:4379 \
//	     --initial-cluster n1=127.0.0.1:2380,n2=127.0.0.1:2381,n3=127.0.0.1:2382
//
// then talk to any member:
//
//	curl -X PUT --data-binary v1 localhost:2379/v1/kv/greeting
//	curl localhost:3379/v1/kv/greeting
//
// Back a running cluster up, and restore a backup into the data dirs of a
// new one, with the snapshot subcommands (snapshotcmd.go):
//
//	node snapshot save FILE --endpoint http://127.0.0.1:2379
//	node snapshot status FILE
//	node snapshot restore FILE --id n1 --data-dir /tmp/r1 --initial-cluster ... --cluster-token NEW
//
// README.md lists the flags and the API. A restarted member needs only
// --id, --data-dir and --listen: its data dir remembers its cluster.
//
// On SIGINT or SIGTERM the node stops taking HTTP requests, ends watch
// streams, lets requests in flight finish (up to shutdownGrace), then
// closes the kvstore node. A second signal kills the process at once.
//
// Exit status: 0 after a clean shutdown, 2 for a bad command line, 1 for
// anything else (the log says what).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// shutdownGrace bounds how long requests in flight may take to finish at
// shutdown before their connections are closed.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, wiring{
		program:      filepath.Base(os.Args[0]),
		newTransport: newTransport,
		join:         join,
		listen:       net.Listen,
		onShutdown:   stop, // a second signal kills the process
	}))
}

// wiring is what run takes from the world outside the node; tests replace
// it with in-memory pieces.
type wiring struct {
	// program is the command's name for its usage text ("node" if empty).
	program      string
	newTransport func(config, *slog.Logger) (transport.Transport, error)
	join         func(context.Context, *kvstore.Node, config) error
	listen       func(network, address string) (net.Listener, error)
	// onShutdown, if set, runs when shutdown begins.
	onShutdown func()
	// nodeOptions are appended to the options run opens the node with.
	nodeOptions []kvstore.Option
	// api configures the HTTP API; its zero value gives the defaults.
	api apiOptions
	// stdout is where the snapshot subcommands print (os.Stdout if nil).
	stdout io.Writer
	// ready, if set, receives the client API's address once it serves; it
	// must have room for one value, or run blocks until it is read.
	ready chan<- net.Addr
}

func (w wiring) output() io.Writer {
	if w.stdout == nil {
		return os.Stdout
	}
	return w.stdout
}

// run is the whole program: it parses args, opens the node, serves the API
// until ctx ends (the signal) or something fails, and shuts down. It logs to
// stderr and returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer, w wiring) int {
	program := w.program
	if program == "" {
		program = "node"
	}
	if len(args) > 0 && args[0] == "snapshot" {
		return runSnapshot(ctx, program, args[1:], w.output(), stderr)
	}
	cfg, err := parseFlags(program, args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := serveNode(ctx, cfg, logger, w); err != nil {
		logger.Error("node failed", "err", err)
		return 1
	}
	return 0
}

// serveNode opens the node, serves the API and shuts both down when ctx
// ends or either fails. It returns only after every goroutine it started
// has ended.
func serveNode(ctx context.Context, cfg config, logger *slog.Logger, w wiring) (err error) {
	tr, err := w.newTransport(cfg, logger)
	if err != nil {
		return fmt.Errorf("peer transport on %s: %w", cfg.listen, err)
	}
	counts := new(refusals) // counted by the limits, exported as metrics
	registry := newRegistry(counts)
	opts := []kvstore.Option{
		kvstore.WithID(cfg.id),
		kvstore.WithTransport(tr),
		kvstore.WithClusterToken(cfg.clusterToken),
		kvstore.WithLogStore(cfg.logStore),
		kvstore.WithLogger(logger), // kvstore names its parts in a component attribute
		kvstore.WithMaxRequestBytes(cfg.limits.maxRequestBytes),
		kvstore.WithSlowRequestThreshold(cfg.slowRequestThreshold),
		kvstore.WithAutoCompaction(cfg.autoCompaction.mode, cfg.autoCompaction.retention),
		kvstore.WithQuotaBytes(cfg.quotaBytes),
		kvstore.WithInitialCorruptCheck(cfg.initialCorruptCheck),
		kvstore.WithCorruptCheckInterval(cfg.corruptCheckInterval),
		kvstore.WithMetrics(registry),
	}
	if cfg.walDir != "" {
		opts = append(opts, kvstore.WithWALDir(cfg.walDir))
	}
	if len(cfg.initialCluster) > 0 {
		opts = append(opts, kvstore.WithBootstrap(cfg.initialCluster...))
	}
	node, err := kvstore.Open(cfg.dataDir, append(opts, w.nodeOptions...)...)
	if err != nil {
		tr.Close()
		return fmt.Errorf("opening %s: %w", cfg.dataDir, err)
	}
	defer func() {
		if cerr := node.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the node: %w", cerr))
		}
		logger.Info("node closed")
	}()
	logger.Info("node open", "id", cfg.id, "data_dir", cfg.dataDir, "peer", cfg.advertise,
		"log_store", cfg.logStore, "wal_dir", cfg.walDir,
		"initial_cluster", len(cfg.initialCluster), "join", cfg.join, "tls", cfg.tls(),
		"peer_identity_check", cfg.identityChecked(), "pprof", cfg.enablePprof)

	var ln net.Listener
	if cfg.clientListenFD > 0 {
		ln, err = inheritedListener(cfg.clientListenFD, "--client-listen-fd")
	} else {
		ln, err = w.listen("tcp", cfg.clientListen)
	}
	if err != nil {
		return fmt.Errorf("client API: %w", err)
	}
	if cfg.limits.maxConnections > 0 {
		ln = limitConnections(ln, cfg.limits.maxConnections, cfg.limits.requestReadBytes(), &counts.connections, logger.With("component", "http"))
	}
	apiOpts := cfg.limits.applyTo(w.api).withLogger(logger)
	apiOpts.refusals = counts
	apiOpts.metrics, apiOpts.pprof = registry, cfg.enablePprof
	api := newAPI(node, apiOpts)
	srv := newHTTPServer(api, cfg.limits, logger)
	srv.RegisterOnShutdown(api.closeStreams)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("client API serving", "addr", ln.Addr().String(), "limits", cfg.limits)
	if w.ready != nil {
		w.ready <- ln.Addr()
	}

	// The goroutines below end when background does, at shutdown.
	background, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	leaderLogged := make(chan struct{})
	go logLeadership(background, node, logger, leaderLogged)
	joinErr := make(chan error, 1)
	if len(cfg.join) > 0 {
		go func() { joinErr <- w.join(background, node, cfg) }()
	} else {
		joinErr = nil // never ready
	}

	served := false // serveErr was received
	for running := true; running; {
		select {
		case <-ctx.Done():
			logger.Info("shutting down", "cause", context.Cause(ctx))
			running = false
		case serr := <-serveErr:
			served, running = true, false
			err = fmt.Errorf("client API: %w", serr)
		case <-node.Removed():
			err = errors.New("this member was removed from the cluster; wipe its data dir to join again")
			running = false
		case jerr := <-joinErr:
			joinErr = nil // received; a nil channel is never ready
			if jerr != nil {
				err = fmt.Errorf("joining through %v: %w", cfg.join, jerr)
				running = false
			} else {
				logger.Info("joined the cluster", "learner", cfg.learner)
			}
		}
	}
	if w.onShutdown != nil {
		w.onShutdown()
	}
	graceCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := srv.Shutdown(graceCtx); serr != nil {
		logger.Warn("client API shutdown: closing the connections still open", "err", serr)
		srv.Close()
	}
	if !served {
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("client API: %w", serr)
		}
	}
	stopBackground()
	<-leaderLogged
	if joinErr != nil {
		<-joinErr // join honours its context, which has ended
	}
	return err
}

// logLeadership logs every change in this node's view of the leadership
// until the node closes (or ctx ends), then closes done.
func logLeadership(ctx context.Context, node *kvstore.Node, logger *slog.Logger, done chan<- struct{}) {
	defer close(done)
	for info := range node.ObserveLeader(ctx) {
		switch {
		case info.IsLeader:
			logger.Info("leading", "term", info.Term)
		case info.LeaderID == node.ID():
			logger.Debug("elected, applying earlier terms' entries before serving", "term", info.Term)
		case info.LeaderID != "":
			logger.Info("following", "leader", info.LeaderID, "leader_addr", info.LeaderAddress, "term", info.Term)
		default:
			logger.Info("no leader", "term", info.Term)
		}
	}
}

// newHTTPServer returns the client API's server, with timeouts that keep a
// slow or idle client from holding a connection forever (lim; zero is no
// limit, as for net/http). The body timeout is the handlers' (body.go),
// in place of a ReadTimeout. Watch streams replace the write deadline
// with one per write (watch.go).
func newHTTPServer(h http.Handler, lim limits, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.headerTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       lim.idleTimeout,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn),
	}
}
