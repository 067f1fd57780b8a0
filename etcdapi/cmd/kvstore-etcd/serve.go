package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/hashicorp/raft"
	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/etcdapi"
	"github.com/kvstore/kvstore/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
)

// shutdownGrace bounds how long requests in flight may take to finish at
// shutdown before their connections are closed.
const shutdownGrace = 10 * time.Second

// serve runs the member until ctx ends (a signal), a listener fails or the
// member is removed, then shuts down: the etcd API ends its streams, the
// HTTP servers stop (waiting up to shutdownGrace for requests in
// flight), and the node closes. It returns once all of that is done.
// onShutdown, if not nil, runs when shutdown begins.
func serve(ctx context.Context, s settings, logger *slog.Logger, onShutdown func()) (err error) {
	if len(s.ignoredKeys) > 0 {
		logger.Warn("--config-file: ignoring keys kvstore-etcd does not use", "keys", s.ignoredKeys)
	}
	id, fresh, err := loadMemberID(s)
	if err != nil {
		return err
	}
	clientTLS, err := clientTLSConfig(s.clientTLS)
	if err != nil {
		return err
	}
	tr, err := peerTransport(s, id, logger)
	if err != nil {
		return fmt.Errorf("peer transport on %s: %w", s.peerBind, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := []kvstore.Option{
		kvstore.WithID(id),
		kvstore.WithTransport(tr),
		kvstore.WithClusterToken(s.token),
		kvstore.WithLogger(logger),
		kvstore.WithMetrics(reg),
		kvstore.WithMemberName(s.name),
		kvstore.WithClientURLs(s.advertiseClientURLs...),
		kvstore.WithAutoCompaction(s.autoCompactionMode, s.autoCompactionRetention),
		kvstore.WithQuotaBytes(s.quotaBytes),
		kvstore.WithAuthTokenTTL(s.authTokenTTL),
		kvstore.WithInitialCorruptCheck(s.initialCorruptCheck),
		kvstore.WithCorruptCheckInterval(s.corruptCheckEvery),
		// etcd's election timeout is raft's follower and candidate
		// timeouts; the leader lease is half of it, as raft's defaults.
		kvstore.WithRaftTiming(s.electionTimeout, s.electionTimeout, s.electionTimeout/2, 0),
		kvstore.WithMaxRequestBytes(s.maxRequestBytes),
		kvstore.WithMaxTxnOps(s.maxTxnOps),
		kvstore.WithWatchProgressInterval(s.watchProgressInterval),
	}
	if s.snapshotCount > 0 {
		opts = append(opts, kvstore.WithSnapshots(s.snapshotCount, kvstore.DefaultSnapshotInterval, kvstore.DefaultSnapshotRetain))
	}
	if s.walDir != "" {
		opts = append(opts, kvstore.WithWALDir(s.walDir))
	}
	if fresh && !s.existing {
		opts = append(opts, kvstore.WithBootstrap(s.cluster...))
	}
	node, err := kvstore.Open(memberDir(s.dataDir), opts...)
	if err != nil {
		tr.Close()
		return fmt.Errorf("opening %s: %w", s.dataDir, err)
	}
	defer func() {
		if cerr := node.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the node: %w", cerr))
		}
		logger.Info("member closed")
	}()
	logger.Info("member open", "name", s.name, "id", id, "data_dir", s.dataDir, "peer_url", s.peerURL,
		"new_data_dir", fresh, "initial_cluster_state", map[bool]string{false: "new", true: "existing"}[s.existing])

	if fresh && s.existing {
		logger.Info("waiting for the cluster's leader to reach this member; it must have been added first, with etcdctl member add "+s.name+" --peer-urls="+s.peerURL,
			"cluster_token", s.token)
	}
	apiOpts := []etcdapi.Option{etcdapi.WithClusterToken(s.token),
		etcdapi.WithAdvertiseClientURLs(s.advertiseClientURLs...), etcdapi.WithPeerURLScheme(s.peerScheme)}
	if s.clientCertAuth {
		// As etcd's --client-cert-auth: with auth enabled, a request
		// without a token acts as the user its certificate names.
		apiOpts = append(apiOpts, etcdapi.WithClientCertAuth())
	}
	api := etcdapi.NewServer(node, apiOpts...)
	gs := grpc.NewServer(append(etcdapi.ServerOptions(), grpc.MaxRecvMsgSize(s.maxRequestBytes+grpcOverheadBytes))...)
	api.Register(gs)
	httpHandler := newHTTPHandler(node, reg, s.enablePprof, logger)
	var servers []*http.Server
	serveErr := make(chan error, len(s.clientURLs)+len(s.metricsURLs))
	start := func(u *url.URL, h http.Handler) error {
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			return err
		}
		if u.Scheme == "https" {
			ln = tls.NewListener(ln, clientTLS)
		}
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		protocols.SetHTTP2(true)
		protocols.SetUnencryptedHTTP2(true)
		hs := &http.Server{Handler: h, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn)}
		servers = append(servers, hs)
		go func() { serveErr <- hs.Serve(ln) }()
		logger.Info("serving", "url", u.String(), "addr", ln.Addr().String())
		return nil
	}
	for _, u := range s.clientURLs {
		if err = start(u, grpcOrHTTP(gs, httpHandler)); err != nil {
			break
		}
	}
	for _, u := range s.metricsURLs {
		if err != nil {
			break
		}
		err = start(u, httpHandler)
	}
	if err != nil {
		err = fmt.Errorf("client listener: %w", err)
	} else {
		select {
		case <-ctx.Done():
			logger.Info("shutting down", "cause", context.Cause(ctx))
		case serr := <-serveErr:
			err = fmt.Errorf("client listener: %w", serr)
			serveErr <- serr // counted below
		case <-node.Removed():
			err = errors.New("this member was removed from the cluster; wipe its data dir to add it again")
		}
	}
	if onShutdown != nil {
		onShutdown()
	}
	api.Close() // ends watch and keep-alive streams, so that connections go idle
	graceCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, hs := range servers {
		if serr := hs.Shutdown(graceCtx); serr != nil {
			logger.Warn("closing client connections still open", "err", serr)
			hs.Close()
		}
	}
	for range servers {
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("client listener: %w", serr)
		}
	}
	gs.Stop()
	return err
}

// peerTransport returns the member's peer transport: TCP on s.peerBind,
// advertised as s.peerAdvertise, plaintext for http:// peer URLs and
// mutual TLS 1.3 with the --peer-* files for https:// (kvstore's peer TLS
// always verifies both sides' certificates against --peer-trusted-ca-file,
// as etcd with --peer-client-cert-auth; certificates need not name member
// IDs).
func peerTransport(s settings, id string, logger *slog.Logger) (transport.Transport, error) {
	opts := []transport.Option{
		transport.WithAdvertiseAddr(s.peerAdvertise),
		transport.WithLocalID(raft.ServerID(id)),
		transport.WithLogger(logger.With("component", "transport")),
	}
	if s.peerScheme == "https" {
		tc, err := transport.LoadTLSConfig(s.peerTLS.certFile, s.peerTLS.keyFile, s.peerTLS.trustedCAFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, transport.WithTLS(tc))
	}
	return transport.NewTCP(s.peerBind, opts...)
}

// clientTLSConfig returns the TLS configuration of the https:// client
// and metrics URLs, or nil if no certificate was given: --cert-file and
// --key-file, and with --client-cert-auth a client certificate verified
// against --trusted-ca-file.
func clientTLSConfig(f tlsFiles) (*tls.Config, error) {
	if f.certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--cert-file, --key-file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if f.trustedCAFile != "" {
		pem, err := os.ReadFile(f.trustedCAFile)
		if err != nil {
			return nil, fmt.Errorf("--trusted-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--trusted-ca-file %s: no PEM certificate", f.trustedCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if f.clientCertAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
