package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kvstore/kvstore"
)

// config is the validated command line of one node.
type config struct {
	id      string
	dataDir string
	// listen is the peer (raft) address the transport binds; advertise is
	// the address the other members dial, listen unless --advertise.
	listen    string
	advertise string
	// clientListen is the HTTP API's address.
	clientListen string
	// listenFD and clientListenFD, when positive, are inherited file
	// descriptors of sockets already listening on listen and clientListen
	// (socket activation, or a parent process that picked free ports).
	listenFD, clientListenFD int
	// initialCluster, when set, founds a new cluster of these members on an
	// empty data dir (kvstore.WithBootstrap); join, when set, names members
	// of a running cluster to ask for admission. At most one is set; with
	// neither, the node restarts from its data dir (or waits to be added).
	initialCluster []kvstore.Peer
	join           []string
	learner        bool
	clusterToken   string
	// tlsCert, tlsKey and tlsCA are the peer transport's mutual TLS files:
	// all three or none.
	tlsCert, tlsKey, tlsCA string
	// peerIdentityCheck, with TLS, binds every member's certificate to its
	// member ID (transport.WithPeerIDCheck): on unless turned off.
	peerIdentityCheck bool
	// logStore is the raft log store (kvstore.WithLogStore): LogStoreWAL
	// or LogStoreBolt. A data dir must be reopened with the store it was
	// created with (Open refuses the other).
	logStore kvstore.LogStore
	// walDir, when set, keeps the raft log apart from the data dir
	// (kvstore.WithWALDir), e.g. on a faster disk; a data dir must be
	// reopened with the WAL dir it was created with.
	walDir   string
	logLevel slog.Level
	// enablePprof serves Go's profiles on the client API (diagnostics.go);
	// quotaBytes is kvstore.WithQuotaBytes'.
	quotaBytes int64
	// slowRequestThreshold is kvstore.WithSlowRequestThreshold's.
	enablePprof          bool
	slowRequestThreshold time.Duration
	// limits bound the client API's connections, streams, timeouts and
	// sizes (limits.go).
	limits limits
	// autoCompaction is kvstore.WithAutoCompaction's (autocompact.go).
	autoCompaction autoCompaction
	// initialCorruptCheck and corruptCheckInterval are
	// kvstore.WithInitialCorruptCheck's and WithCorruptCheckInterval's.
	initialCorruptCheck  bool
	corruptCheckInterval time.Duration
}

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// parseFlags parses and validates args (without the program name). Help
// (-h, --help) is written to output, naming the command program, and
// returned as flag.ErrHelp; every other problem wraps errUsage and says
// which flag is wrong.
func parseFlags(program string, args []string, output io.Writer) (config, error) {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	// The flag package's own messages and usage dump are silenced: help
	// is printed below, and a bad flag is reported once, by the caller.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var (
		cfg            = config{limits: defaultLimits()}
		initialCluster string
		join           string
		logLevel       string
		logStore       string
	)
	fs.StringVar(&cfg.id, "id", "", "this member's ID, unique in the cluster (required)")
	fs.StringVar(&cfg.dataDir, "data-dir", "", "directory of this member's state (required; created if missing)")
	fs.StringVar(&cfg.listen, "listen", "", "peer address to listen on for raft traffic, host:port (required)")
	fs.StringVar(&cfg.advertise, "advertise", "", "peer address the other members dial, host:port (default --listen)")
	fs.StringVar(&cfg.clientListen, "client-listen", "127.0.0.1:2379", "address of the HTTP JSON API, host:port")
	fs.StringVar(&initialCluster, "initial-cluster", "", "found a new cluster of these members: id=host:port,id=host:port,...")
	fs.StringVar(&join, "join", "", "join a running cluster through these members' peer addresses: host:port,host:port,...")
	fs.IntVar(&cfg.listenFD, "listen-fd", 0, "inherited file descriptor of a socket already listening on --listen (socket activation)")
	fs.IntVar(&cfg.clientListenFD, "client-listen-fd", 0, "inherited file descriptor of a socket already listening on --client-listen")
	fs.BoolVar(&cfg.learner, "learner", false, "with --join: join as a non-voting learner")
	fs.StringVar(&cfg.clusterToken, "cluster-token", kvstore.DefaultClusterToken, "cluster name; a data dir or peer of another cluster is refused")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "peer TLS certificate (PEM); with --tls-key and --tls-ca")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "peer TLS private key (PEM)")
	fs.StringVar(&cfg.tlsCA, "tls-ca", "", "CA bundle (PEM) that peer certificates must chain to")
	fs.BoolVar(&cfg.peerIdentityCheck, "peer-identity-check", true,
		"with --tls-*: every member's certificate must name its member ID (--id) as a DNS SAN, checked both ways; false checks the CA only")
	fs.StringVar(&logStore, "log-store", "wal", "raft log store: wal (raft-wal segment files) or bolt (one raft-boltdb file); keep the one the data dir was created with")
	fs.StringVar(&cfg.walDir, "wal-dir", "", "directory of the raft log, apart from --data-dir (e.g. on a faster disk; default: inside --data-dir); keep the one the data dir was created with")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&cfg.enablePprof, "enable-pprof", false, "serve Go's runtime profiles on the client API under /debug/pprof/")
	fs.Int64Var(&cfg.quotaBytes, "quota-backend-bytes", 0,
		"the store's quota in bytes; past it a NOSPACE alarm refuses writes that add data (0: 2 GiB, negative: no quota)")
	fs.DurationVar(&cfg.slowRequestThreshold, "slow-request-threshold", kvstore.DefaultSlowRequestThreshold,
		"log requests and applies that take longer at warn level (0: never)")
	fs.BoolVar(&cfg.initialCorruptCheck, "initial-corrupt-check", true,
		"once caught up after start, compare this member's hash with its peers' (etcd's initial corruption check)")
	fs.DurationVar(&cfg.corruptCheckInterval, "corrupt-check-interval", kvstore.DefaultCorruptCheckInterval,
		"how often the leader compares members' hashes at the latest compaction (etcd's compact hash check; 0: never)")
	lim := &cfg.limits
	fs.IntVar(&lim.maxConnections, "client-max-connections", lim.maxConnections,
		"client connections open at once; one more is answered 503 and closed (0: no limit)")
	fs.IntVar(&lim.maxStreams, "max-concurrent-streams", lim.maxStreams,
		"watch streams open at once on this member; one more is answered 429 (0: no limit)")
	fs.DurationVar(&lim.headerTimeout, "client-header-timeout", lim.headerTimeout,
		"time a client has to send a request's headers (0: no limit)")
	fs.DurationVar(&lim.bodyTimeout, "client-body-timeout", lim.bodyTimeout,
		"time a client has to send a request's body after its headers; later is a 408 (0: no limit)")
	fs.DurationVar(&lim.idleTimeout, "client-idle-timeout", lim.idleTimeout,
		"time a keep-alive client connection may wait for its next request (0: no limit)")
	fs.IntVar(&lim.maxHeaderBytes, "client-max-header-bytes", lim.maxHeaderBytes,
		"size of a request's line and headers, the key in the URL included")
	fs.IntVar(&lim.maxRequestBytes, "max-request-bytes", lim.maxRequestBytes,
		"encoded size of one write (etcd's flag); a request body may be twice this; over either is a 413")
	acMode, acRetention := "periodic", kvstore.DefaultAutoCompactionRetention.String()
	fs.StringVar(&acMode, "auto-compaction-mode", acMode, "periodic (keep --auto-compaction-retention of history), revision (keep that many revisions) or off")
	fs.StringVar(&acRetention, "auto-compaction-retention", acRetention, "history to keep: a duration (5m, 1h) in periodic mode, a count of revisions in revision mode")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, output)
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %v (%s --help lists the flags)", errUsage, err, program)
	}
	if fs.NArg() > 0 {
		return config{}, usageError("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := cfg.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return config{}, usageError("--log-level %q: want debug, info, warn or error", logLevel)
	}
	var err error
	if cfg.logStore, err = parseLogStore(logStore); err != nil {
		return config{}, err
	}
	if cfg.autoCompaction, err = parseAutoCompaction(acMode, acRetention); err != nil {
		return config{}, err
	}
	if initialCluster != "" {
		if cfg.initialCluster, err = parseInitialCluster(initialCluster); err != nil {
			return config{}, err
		}
	}
	if join != "" {
		if cfg.join, err = parseAddressList("--join", join); err != nil {
			return config{}, err
		}
	}
	if cfg.corruptCheckInterval < 0 {
		return config{}, usageError("--corrupt-check-interval %s: want a positive duration, or 0 for never", cfg.corruptCheckInterval)
	}
	if err := cfg.limits.validate(); err != nil {
		return config{}, err
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	identitySet := false
	fs.Visit(func(f *flag.Flag) { identitySet = identitySet || f.Name == "peer-identity-check" })
	if identitySet && cfg.peerIdentityCheck && !cfg.tls() {
		return config{}, usageError("--peer-identity-check needs mutual TLS (--tls-cert, --tls-key, --tls-ca): without TLS nothing proves who a peer is")
	}
	return cfg, nil
}

// validate checks what no single flag can check alone, and fills in
// defaults that depend on other flags.
func (c *config) validate() error {
	switch {
	case c.id == "":
		return usageError("--id is required")
	case strings.ContainsAny(c.id, "=, \t\n"):
		return usageError("--id %q: must not contain '=', ',' or white space", c.id)
	case c.dataDir == "":
		return usageError("--data-dir is required")
	case c.listen == "":
		return usageError("--listen is required (this member's peer address, host:port)")
	case c.clusterToken == "":
		return usageError("--cluster-token must not be empty")
	case c.slowRequestThreshold < 0:
		return usageError("--slow-request-threshold %v must not be negative (0: never log)", c.slowRequestThreshold)
	}
	if err := checkAddress("--listen", c.listen); err != nil {
		return err
	}
	if err := checkAddress("--client-listen", c.clientListen); err != nil {
		return err
	}
	if c.advertise == "" {
		host, port, _ := net.SplitHostPort(c.listen)
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return usageError("--listen %q binds every interface: give --advertise, the address the other members dial", c.listen)
		}
		if port == "0" {
			return usageError("--listen %q: port 0 cannot be dialled by the other members: give a fixed port", c.listen)
		}
		c.advertise = c.listen
	}
	if err := checkAddress("--advertise", c.advertise); err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(c.advertise); host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		return usageError("--advertise %q: needs a host the other members can dial", c.advertise)
	}
	switch {
	case len(c.initialCluster) > 0 && len(c.join) > 0:
		return usageError("--initial-cluster and --join exclude each other: found a new cluster, or join a running one")
	case c.learner && len(c.join) == 0:
		return usageError("--learner needs --join (the members of a new cluster all vote)")
	}
	if len(c.initialCluster) > 0 {
		var self *kvstore.Peer
		for i := range c.initialCluster {
			if c.initialCluster[i].ID == c.id {
				self = &c.initialCluster[i]
			}
		}
		switch {
		case self == nil:
			return usageError("--initial-cluster does not list this member's --id %q", c.id)
		case self.Address != c.advertise:
			return usageError("--initial-cluster lists %s at %s, but its advertised peer address is %s", c.id, self.Address, c.advertise)
		}
	}
	for _, a := range c.join {
		if a == c.advertise {
			return usageError("--join lists this member's own address %s: name members of the running cluster", a)
		}
	}
	return c.validateTLS()
}

// validateTLS checks that the TLS files are given all together, or not at
// all, and that each exists; reading them is the transport's job.
func (c *config) validateTLS() error {
	files := []struct{ flag, path string }{{"--tls-cert", c.tlsCert}, {"--tls-key", c.tlsKey}, {"--tls-ca", c.tlsCA}}
	var given, missing []string
	for _, f := range files {
		if f.path == "" {
			missing = append(missing, f.flag)
		} else {
			given = append(given, f.flag)
		}
	}
	if len(given) > 0 && len(missing) > 0 {
		return usageError("mutual TLS needs --tls-cert, --tls-key and --tls-ca together: %s given without %s",
			strings.Join(given, ", "), strings.Join(missing, ", "))
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			return usageError("%s: %v", f.flag, err)
		} else if st.IsDir() {
			return usageError("%s %s: is a directory", f.flag, f.path)
		}
	}
	return nil
}

// tls reports whether the peer transport uses mutual TLS.
func (c *config) tls() bool { return c.tlsCert != "" }

// identityChecked reports whether the peer transport binds certificates to
// member IDs.
func (c *config) identityChecked() bool { return c.tls() && c.peerIdentityCheck }

// parseLogStore parses --log-store.
func parseLogStore(s string) (kvstore.LogStore, error) {
	switch s {
	case "wal":
		return kvstore.LogStoreWAL, nil
	case "bolt":
		return kvstore.LogStoreBolt, nil
	}
	return 0, usageError("--log-store %q: want wal or bolt", s)
}

// parseInitialCluster parses --initial-cluster: comma-separated id=host:port
// entries, as etcd's --initial-cluster (without the URL scheme). IDs and
// addresses must be unique; white space around entries is ignored.
func parseInitialCluster(s string) ([]kvstore.Peer, error) {
	var peers []kvstore.Peer
	ids, addrs := map[string]bool{}, map[string]string{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, usageError("--initial-cluster: entry %d is empty (want id=host:port,...)", i+1)
		}
		id, addr, ok := strings.Cut(entry, "=")
		id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
		switch {
		case !ok:
			return nil, usageError("--initial-cluster: entry %q: want id=host:port", entry)
		case id == "":
			return nil, usageError("--initial-cluster: entry %q has no ID", entry)
		case strings.ContainsAny(id, " \t\n="):
			return nil, usageError("--initial-cluster: ID %q must not contain '=' or white space", id)
		case ids[id]:
			return nil, usageError("--initial-cluster: ID %q is listed twice", id)
		}
		if err := checkAddress("--initial-cluster: "+id, addr); err != nil {
			return nil, err
		}
		if other, dup := addrs[addr]; dup {
			return nil, usageError("--initial-cluster: %s and %s share the address %s", other, id, addr)
		}
		ids[id], addrs[addr] = true, id
		peers = append(peers, kvstore.Peer{ID: id, Address: addr})
	}
	return peers, nil
}

// parseAddressList parses a comma-separated list of host:port addresses,
// each once.
func parseAddressList(flagName, s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for i, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, usageError("%s: entry %d is empty (want host:port,...)", flagName, i+1)
		}
		if err := checkAddress(flagName, a); err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, usageError("%s: %s is listed twice", flagName, a)
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}

// checkAddress checks that addr is host:port with a numeric port (0 is
// allowed: the system picks one). The host may be empty (every interface).
func checkAddress(flagName, addr string) error {
	if strings.Contains(addr, "://") {
		return usageError("%s %q: give host:port, without a URL scheme", flagName, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError("%s %q: want host:port: %v", flagName, addr, err)
	}
	if strings.ContainsAny(host, "=,/ \t\n") {
		return usageError("%s %q: want host:port: %q is not a host name or IP address", flagName, addr, host)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usageError("%s %q: port %q is not a number from 0 to 65535", flagName, addr, port)
	} else if n == 0 && flagName != "--client-listen" && flagName != "--listen" {
		return usageError("%s %q: port 0 cannot be dialled", flagName, addr)
	}
	return nil
}

// usageText opens the help; %[1]s is the program's name.
const usageText = `Usage: %[1]s --id ID --data-dir DIR --listen HOST:PORT [flags]

Runs one member of a kvstore cluster: raft with the other members on --listen,
an HTTP JSON API for clients on --client-listen.

Found a new cluster (each founding member, on an empty data dir):
  %[1]s --id n1 --data-dir /var/lib/kv/n1 --listen 10.0.0.1:2380 \
      --initial-cluster n1=10.0.0.1:2380,n2=10.0.0.2:2380,n3=10.0.0.3:2380
Join a running cluster through any of its members:
  %[1]s --id n4 --data-dir /var/lib/kv/n4 --listen 10.0.0.4:2380 --join 10.0.0.1:2380
Restart a member (its data dir remembers its cluster):
  %[1]s --id n1 --data-dir /var/lib/kv/n1 --listen 10.0.0.1:2380

Flags:
`

// printUsage writes the help for fs to w: the synopsis and the three ways
// to start, then every flag as the README spells it, with two dashes (the
// flag package takes one or two).
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, usageText, fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
	})
	fmt.Fprintf(w, "\nExit status: 0 after a clean shutdown, 2 for a bad command line, 1 otherwise.\n")
}
