package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kvstore/kvstore"
)

// config is the command line (or the --config-file) as given, before it
// is checked and resolved into settings (settings.go). Every field has
// the meaning of etcd's flag of the same name.
type config struct {
	name    string
	dataDir string
	walDir  string

	listenClientURLs    string // comma-separated, as etcd's
	advertiseClientURLs string
	listenPeerURLs      string
	advertisePeerURLs   string // --initial-advertise-peer-urls
	listenMetricsURLs   string

	initialCluster      string
	initialClusterToken string
	initialClusterState string

	clientTLS, peerTLS tlsFiles

	autoCompactionMode      string
	autoCompactionRetention string
	quotaBackendBytes       int64
	enablePprof             bool
	logLevel                string
	logger                  string // --logger: "zap", etcd's only one
	logOutputs              string // --log-outputs, comma-separated

	authTokenTTL int // --auth-token-ttl, seconds

	heartbeatInterval uint // --heartbeat-interval, milliseconds
	electionTimeout   uint // --election-timeout, milliseconds
	maxRequestBytes   uint
	maxTxnOps         uint

	snapshotCount         uint64 // 0: kvstore's default
	watchProgressInterval string // a duration

	// The corruption checks (etcd's --experimental-* names, which etcd
	// 3.6 still takes): the initial check at start, and the leader's
	// compact hash check every compactHashCheckTime.
	initialCorruptCheck     bool
	compactHashCheckEnabled bool
	compactHashCheckTime    string

	// ignoredKeys are the keys of the --config-file that kvstore-etcd
	// does not serve, for a warning.
	ignoredKeys []string
}

// tlsFiles are one side's TLS flags: --cert-file, --key-file,
// --trusted-ca-file, --client-cert-auth, or their --peer-* twins.
type tlsFiles struct {
	certFile, keyFile, trustedCAFile string
	clientCertAuth                   bool
}

// usageErr is a bad command line or config file: exit status 2.
// reported is set when the flag package has printed it already.
type usageErr struct {
	msg      string
	reported bool
}

func (e *usageErr) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}

// defaultConfig is etcd's defaults: a lone member named "default" on
// localhost's ports 2379 and 2380.
func defaultConfig() config {
	return config{
		name:                    "default",
		listenClientURLs:        "http://localhost:2379",
		advertiseClientURLs:     "http://localhost:2379",
		listenPeerURLs:          "http://localhost:2380",
		advertisePeerURLs:       "http://localhost:2380",
		initialCluster:          "default=http://localhost:2380",
		initialClusterToken:     "etcd-cluster",
		initialClusterState:     "new",
		autoCompactionMode:      "periodic",
		autoCompactionRetention: "0",
		logLevel:                "info",
		logger:                  "zap",
		logOutputs:              "default",
		authTokenTTL:            300,
		heartbeatInterval:       100,
		electionTimeout:         1000,
		maxRequestBytes:         kvstore.DefaultMaxRequestBytes,
		maxTxnOps:               kvstore.DefaultMaxTxnOps,
		watchProgressInterval:   kvstore.DefaultWatchProgressInterval.String(),
		initialCorruptCheck:     true,
		compactHashCheckEnabled: true,
		compactHashCheckTime:    "1m",
	}
}

// parseCommandLine parses args. With --config-file, the file is the whole
// configuration and no other flag may be given: etcd ignores the other
// flags then, which hides a mistake; kvstore-etcd refuses them. The
// error is flag.ErrHelp for -h, else a *usageErr.
func parseCommandLine(program string, args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.name, "name", cfg.name, "human-readable name for this member")
	fs.StringVar(&cfg.dataDir, "data-dir", "", "path to the data directory (default \"${name}.etcd\")")
	fs.StringVar(&cfg.walDir, "wal-dir", "", "path to a dedicated directory for the raft log")
	fs.StringVar(&cfg.listenClientURLs, "listen-client-urls", cfg.listenClientURLs, "comma-separated URLs to serve clients on (http:// plaintext, https:// TLS)")
	fs.StringVar(&cfg.advertiseClientURLs, "advertise-client-urls", cfg.advertiseClientURLs, "comma-separated client URLs this member publishes to the cluster")
	fs.StringVar(&cfg.listenPeerURLs, "listen-peer-urls", cfg.listenPeerURLs, "the URL to serve peer traffic on (one)")
	fs.StringVar(&cfg.advertisePeerURLs, "initial-advertise-peer-urls", cfg.advertisePeerURLs, "this member's peer URL, which the others dial (one)")
	fs.StringVar(&cfg.listenMetricsURLs, "listen-metrics-urls", "", "comma-separated URLs to serve /metrics and the health endpoints on, besides the client URLs")
	fs.StringVar(&cfg.initialCluster, "initial-cluster", cfg.initialCluster, "name=peer-URL of every member, for bootstrapping a new cluster")
	fs.StringVar(&cfg.initialClusterToken, "initial-cluster-token", cfg.initialClusterToken, "the cluster's token, from which member and cluster IDs derive")
	fs.StringVar(&cfg.initialClusterState, "initial-cluster-state", cfg.initialClusterState, "new (bootstrap with --initial-cluster) or existing (join after etcdctl member add)")
	fs.BoolVar(&cfg.clientTLS.clientCertAuth, "client-cert-auth", false, "require client certificates signed by --trusted-ca-file; with auth enabled, a request without a token is the certificate's common name's")
	fs.StringVar(&cfg.clientTLS.trustedCAFile, "trusted-ca-file", "", "CA of client certificates")
	fs.StringVar(&cfg.clientTLS.certFile, "cert-file", "", "certificate of the https:// client URLs")
	fs.StringVar(&cfg.clientTLS.keyFile, "key-file", "", "key of --cert-file")
	fs.BoolVar(&cfg.peerTLS.clientCertAuth, "peer-client-cert-auth", false, "accepted for etcd's configurations: kvstore's peer TLS always requires certificates")
	fs.StringVar(&cfg.peerTLS.trustedCAFile, "peer-trusted-ca-file", "", "CA of every member's peer certificate")
	fs.StringVar(&cfg.peerTLS.certFile, "peer-cert-file", "", "this member's peer certificate (server and client)")
	fs.StringVar(&cfg.peerTLS.keyFile, "peer-key-file", "", "key of --peer-cert-file")
	fs.StringVar(&cfg.autoCompactionMode, "auto-compaction-mode", cfg.autoCompactionMode, "periodic or revision")
	fs.StringVar(&cfg.autoCompactionRetention, "auto-compaction-retention", cfg.autoCompactionRetention, "periodic: a duration (\"30m\") or a number of hours; revision: a count; 0 off")
	fs.Int64Var(&cfg.quotaBackendBytes, "quota-backend-bytes", 0, "the store's quota in bytes (0: kvstore's default of 2 GiB)")
	fs.BoolVar(&cfg.enablePprof, "enable-pprof", false, "serve /debug/pprof/ on the client URLs")
	fs.StringVar(&cfg.logLevel, "log-level", cfg.logLevel, "debug, info, warn, error (panic and fatal log as error)")
	fs.StringVar(&cfg.logger, "logger", cfg.logger, "zap, etcd's one logger: JSON lines")
	fs.StringVar(&cfg.logOutputs, "log-outputs", cfg.logOutputs, "comma-separated: default or stderr, stdout, or files to append to")
	fs.IntVar(&cfg.authTokenTTL, "auth-token-ttl", cfg.authTokenTTL, "seconds an auth token (etcdctl --user) stays valid")
	fs.UintVar(&cfg.heartbeatInterval, "heartbeat-interval", cfg.heartbeatInterval, "milliseconds; checked as etcd checks it (--election-timeout at least 5 times it), while the leader heartbeats every tenth of --election-timeout (hashicorp/raft's fixed ratio: 100ms at the defaults, as etcd)")
	fs.UintVar(&cfg.electionTimeout, "election-timeout", cfg.electionTimeout, "milliseconds a follower waits without hearing from a leader before it campaigns")
	fs.UintVar(&cfg.maxRequestBytes, "max-request-bytes", cfg.maxRequestBytes, "largest write request a client may send, in bytes")
	fs.UintVar(&cfg.maxTxnOps, "max-txn-ops", cfg.maxTxnOps, "most operations in each list of a txn (every member must have the same)")
	fs.Uint64Var(&cfg.snapshotCount, "snapshot-count", 0, "new raft log entries that trigger a snapshot (0: kvstore's default, 8192)")
	fs.StringVar(&cfg.watchProgressInterval, "watch-progress-notify-interval", cfg.watchProgressInterval, "how often a watch with progress notifications that received nothing hears the revision")
	fs.StringVar(&cfg.watchProgressInterval, "experimental-watch-progress-notify-interval", cfg.watchProgressInterval, "etcd 3.5's name of --watch-progress-notify-interval")
	fs.BoolVar(&cfg.initialCorruptCheck, "experimental-initial-corrupt-check", cfg.initialCorruptCheck, "compare this member's hash with its peers' once caught up after start (on by default, unlike etcd: it runs in the background)")
	fs.BoolVar(&cfg.compactHashCheckEnabled, "experimental-compact-hash-check-enabled", cfg.compactHashCheckEnabled, "the leader compares members' hashes at each compaction (on by default, as etcd 3.6's CompactHashCheck)")
	fs.StringVar(&cfg.compactHashCheckTime, "experimental-compact-hash-check-time", cfg.compactHashCheckTime, "how often the leader looks for a compaction to check")
	configFile := fs.String("config-file", "", "etcd's YAML configuration file; no other flag may be given with it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, &usageErr{msg: err.Error(), reported: true} // with the usage text
	}
	if fs.NArg() > 0 {
		return config{}, usageError("unexpected argument %q (flags take the form --name=value)", fs.Arg(0))
	}
	if *configFile != "" {
		var others []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "config-file" {
				others = append(others, "--"+f.Name)
			}
		})
		if len(others) > 0 {
			return config{}, usageError("--config-file is the whole configuration; %s given besides it", strings.Join(others, ", "))
		}
		return loadConfigFile(*configFile)
	}
	return cfg, nil
}

// level returns the slog level of --log-level.
func (c config) level() (slog.Level, error) {
	switch c.logLevel {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error", "panic", "fatal":
		return slog.LevelError, nil
	}
	return 0, usageError("--log-level %q: want debug, info, warn or error", c.logLevel)
}
