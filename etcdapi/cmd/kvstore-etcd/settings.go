package main

import (
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/etcdapi"
)

// settings is a config checked and resolved into what serve needs.
type settings struct {
	name     string
	dataDir  string
	walDir   string
	logLevel slog.Level

	clientURLs          []*url.URL // --listen-client-urls
	advertiseClientURLs []string
	metricsURLs         []*url.URL // --listen-metrics-urls
	clientTLS           tlsFiles

	peerScheme    string // "http" or "https", of every peer URL
	peerBind      string // host:port of --listen-peer-urls
	peerAdvertise string // host:port of --initial-advertise-peer-urls
	peerURL       string // --initial-advertise-peer-urls as given
	peerTLS       tlsFiles

	token    string
	existing bool           // --initial-cluster-state existing
	cluster  []kvstore.Peer // --initial-cluster, with derived IDs (state new)

	autoCompactionMode      kvstore.AutoCompactionMode
	autoCompactionRetention time.Duration // a count in revision mode
	quotaBytes              int64
	enablePprof             bool
	ignoredKeys             []string

	authTokenTTL        time.Duration
	clientCertAuth      bool          // the user of a request without a token is its certificate's CN
	initialCorruptCheck bool          // --experimental-initial-corrupt-check
	corruptCheckEvery   time.Duration // 0: the compact hash check is off

	electionTimeout time.Duration // --election-timeout
	maxRequestBytes int
	maxTxnOps       int

	snapshotCount         uint64 // 0: kvstore's default
	watchProgressInterval time.Duration

	// logOutputs are --log-outputs: "stderr", "stdout" or file paths.
	logOutputs []string
}

// resolve checks c. Every error is a *usageErr.
func resolve(c config) (settings, error) {
	s := settings{name: c.name, dataDir: c.dataDir, walDir: c.walDir, token: c.initialClusterToken,
		clientTLS: c.clientTLS, peerTLS: c.peerTLS, quotaBytes: c.quotaBackendBytes, enablePprof: c.enablePprof,
		ignoredKeys: c.ignoredKeys}
	var err error
	if s.logLevel, err = c.level(); err != nil {
		return settings{}, err
	}
	if s.name == "" {
		return settings{}, usageError("--name is empty")
	}
	if s.dataDir == "" {
		s.dataDir = s.name + ".etcd"
	}
	if s.token == "" {
		return settings{}, usageError("--initial-cluster-token is empty")
	}
	if s.clientURLs, err = parseURLs("--listen-client-urls", c.listenClientURLs, true); err != nil {
		return settings{}, err
	}
	if s.metricsURLs, err = parseURLs("--listen-metrics-urls", c.listenMetricsURLs, false); err != nil {
		return settings{}, err
	}
	advertised, err := parseURLs("--advertise-client-urls", c.advertiseClientURLs, false)
	if err != nil {
		return settings{}, err
	}
	for _, u := range advertised {
		s.advertiseClientURLs = append(s.advertiseClientURLs, u.String())
	}
	for _, u := range slices.Concat(s.clientURLs, s.metricsURLs) {
		if u.Scheme == "https" && (c.clientTLS.certFile == "" || c.clientTLS.keyFile == "") {
			return settings{}, usageError("%s is https: --cert-file and --key-file are required", u)
		}
	}
	if c.clientTLS.clientCertAuth && c.clientTLS.trustedCAFile == "" {
		return settings{}, usageError("--client-cert-auth needs --trusted-ca-file")
	}

	listen, err := onePeerURL("--listen-peer-urls", c.listenPeerURLs)
	if err != nil {
		return settings{}, err
	}
	advertise, err := onePeerURL("--initial-advertise-peer-urls", c.advertisePeerURLs)
	if err != nil {
		return settings{}, err
	}
	if listen.Scheme != advertise.Scheme {
		return settings{}, usageError("--listen-peer-urls is %s:// but --initial-advertise-peer-urls %s://", listen.Scheme, advertise.Scheme)
	}
	s.peerScheme, s.peerBind, s.peerAdvertise, s.peerURL = listen.Scheme, listen.Host, advertise.Host, advertise.String()
	if s.peerScheme == "https" && (c.peerTLS.certFile == "" || c.peerTLS.keyFile == "" || c.peerTLS.trustedCAFile == "") {
		return settings{}, usageError("the peer URLs are https: --peer-cert-file, --peer-key-file and --peer-trusted-ca-file are required")
	}

	switch c.initialClusterState {
	case "new":
		// A restarted member's data dir remembers its cluster: etcd
		// ignores --initial-cluster then, and so does this.
		if _, err := os.Stat(filepath.Join(s.dataDir, memberIDFile)); err == nil {
			break
		}
		if s.cluster, err = initialCluster(c.initialCluster, s.name, advertise, s.token); err != nil {
			return settings{}, err
		}
	case "existing":
		s.existing = true
	default:
		return settings{}, usageError("--initial-cluster-state %q: want new or existing", c.initialClusterState)
	}
	if s.autoCompactionMode, s.autoCompactionRetention, err = autoCompaction(c.autoCompactionMode, c.autoCompactionRetention); err != nil {
		return settings{}, err
	}
	if c.authTokenTTL <= 0 {
		return settings{}, usageError("--auth-token-ttl %d: want a positive number of seconds", c.authTokenTTL)
	}
	s.authTokenTTL = time.Duration(c.authTokenTTL) * time.Second
	s.clientCertAuth = c.clientTLS.clientCertAuth
	s.initialCorruptCheck = c.initialCorruptCheck
	if c.compactHashCheckEnabled {
		if s.corruptCheckEvery, err = time.ParseDuration(c.compactHashCheckTime); err != nil || s.corruptCheckEvery <= 0 {
			return settings{}, usageError("--experimental-compact-hash-check-time %q: want a positive duration (\"1m\")", c.compactHashCheckTime)
		}
	}
	if s.electionTimeout, err = raftTiming(c.heartbeatInterval, c.electionTimeout); err != nil {
		return settings{}, err
	}
	if c.maxRequestBytes == 0 || c.maxRequestBytes > maxRequestBytesLimit {
		return settings{}, usageError("--max-request-bytes %d: want 1 to %d", c.maxRequestBytes, maxRequestBytesLimit)
	}
	if c.maxTxnOps == 0 || c.maxTxnOps > math.MaxInt32 {
		return settings{}, usageError("--max-txn-ops %d: want a positive number", c.maxTxnOps)
	}
	s.maxRequestBytes, s.maxTxnOps = int(c.maxRequestBytes), int(c.maxTxnOps)
	s.snapshotCount = c.snapshotCount
	if c.logger != "zap" {
		return settings{}, usageError("--logger %q: only zap, etcd's logger (JSON lines)", c.logger)
	}
	for out := range strings.SplitSeq(c.logOutputs, ",") {
		switch out = strings.TrimSpace(out); out {
		case "":
			return settings{}, usageError("--log-outputs %q: an empty output", c.logOutputs)
		case "default":
			out = "stderr"
		}
		if !slices.Contains(s.logOutputs, out) {
			s.logOutputs = append(s.logOutputs, out)
		}
	}
	if s.watchProgressInterval, err = time.ParseDuration(c.watchProgressInterval); err != nil || s.watchProgressInterval <= 0 {
		return settings{}, usageError("--watch-progress-notify-interval %q: want a positive duration (\"10m\")", c.watchProgressInterval)
	}
	return s, nil
}

// maxRequestBytesLimit is the largest --max-request-bytes: gRPC's limit on
// a received message, which serve sets 512 KiB above it, is an int32.
const maxRequestBytesLimit = math.MaxInt32 - grpcOverheadBytes

// grpcOverheadBytes is what gRPC may receive beyond --max-request-bytes,
// as etcd allows it: the request's other fields and framing, so that a
// request just over the limit gets the node's ErrRequestTooLarge rather
// than gRPC's refusal.
const grpcOverheadBytes = 512 << 10

// raftTiming checks --heartbeat-interval and --election-timeout as etcd
// does (a positive heartbeat, an election timeout of at least 5
// heartbeats and at most 50 s) and returns the election timeout. It is
// kvstore's follower timeout, and hashicorp/raft's leader heartbeats
// every tenth of it; the heartbeat interval sets nothing else.
func raftTiming(heartbeatMs, electionMs uint) (time.Duration, error) {
	switch {
	case heartbeatMs == 0:
		return 0, usageError("--heartbeat-interval 0: want a positive number of milliseconds")
	case electionMs < 5*heartbeatMs:
		return 0, usageError("--election-timeout %dms: should be at least 5 times --heartbeat-interval (%dms)", electionMs, heartbeatMs)
	case electionMs > 50000:
		return 0, usageError("--election-timeout %dms: at most 50000ms", electionMs)
	case electionMs < 10:
		// raft wants a leader lease (half of it here) of 5ms at least.
		return 0, usageError("--election-timeout %dms: at least 10ms", electionMs)
	}
	return time.Duration(electionMs) * time.Millisecond, nil
}

// parseURLs parses a comma-separated list of http:// and https:// URLs
// with a host and a port and nothing else.
func parseURLs(flagName, list string, required bool) ([]*url.URL, error) {
	if strings.TrimSpace(list) == "" {
		if required {
			return nil, usageError("%s is empty", flagName)
		}
		return nil, nil
	}
	var out []*url.URL
	for raw := range strings.SplitSeq(list, ",") {
		raw = strings.TrimSpace(raw)
		if _, err := etcdapi.ParsePeerURL(raw, ""); err != nil {
			return nil, usageError("%s: %v", flagName, strings.Replace(err.Error(), "peer URL", "URL", 1))
		}
		u, _ := url.Parse(raw)
		out = append(out, u)
	}
	return out, nil
}

// onePeerURL parses a peer URL flag: kvstore records one peer address per
// member.
func onePeerURL(flagName, raw string) (*url.URL, error) {
	urls, err := parseURLs(flagName, raw, true)
	if err != nil {
		return nil, err
	}
	if len(urls) != 1 {
		return nil, usageError("%s: %d URLs; kvstore records exactly one peer URL per member", flagName, len(urls))
	}
	return urls[0], nil
}

// initialCluster parses --initial-cluster (name=URL,...) into the peers to
// bootstrap, each under the ID derived from its URL and the token. It
// must name this member (name) at its advertised URL, once, and give each
// member one URL of the same scheme.
func initialCluster(list, name string, self *url.URL, token string) ([]kvstore.Peer, error) {
	var peers []kvstore.Peer
	names := map[string]bool{}
	foundSelf := false
	for entry := range strings.SplitSeq(list, ",") {
		member, raw, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok || member == "" {
			return nil, usageError("--initial-cluster: %q is not name=URL", entry)
		}
		if names[member] {
			return nil, usageError("--initial-cluster: %s is named twice; kvstore records exactly one peer URL per member", member)
		}
		names[member] = true
		u, err := onePeerURL("--initial-cluster", raw)
		if err != nil {
			return nil, err
		}
		if u.Scheme != self.Scheme {
			return nil, usageError("--initial-cluster: %s is %s:// but this member's peer URL is %s://", member, u.Scheme, self.Scheme)
		}
		if member == name {
			if u.String() != self.String() {
				return nil, usageError("--initial-cluster gives %s=%s but --initial-advertise-peer-urls is %s", name, u, self)
			}
			foundSelf = true
		}
		peers = append(peers, kvstore.Peer{ID: etcdapi.PeerMemberID([]string{u.String()}, token), Address: u.Host})
	}
	if !foundSelf {
		return nil, usageError("--initial-cluster does not name this member (--name %s)", name)
	}
	return peers, nil
}

// autoCompaction reads --auto-compaction-mode and -retention as etcd does:
// a retention of 0 turns it off; periodic takes a duration ("30m") or a
// whole number of hours ("1"); revision a count of revisions.
func autoCompaction(mode, retention string) (kvstore.AutoCompactionMode, time.Duration, error) {
	n, numErr := strconv.ParseInt(retention, 10, 64)
	switch mode {
	case "periodic":
		if numErr == nil {
			if n < 0 {
				break
			}
			if n == 0 {
				return kvstore.AutoCompactionOff, 0, nil
			}
			return kvstore.AutoCompactionPeriodic, time.Duration(n) * time.Hour, nil
		}
		d, err := time.ParseDuration(retention)
		if err != nil || d < 0 {
			break
		}
		if d == 0 {
			return kvstore.AutoCompactionOff, 0, nil
		}
		if d < kvstore.MinAutoCompactionRetention {
			return 0, 0, usageError("--auto-compaction-retention %q: at least %v", retention, kvstore.MinAutoCompactionRetention)
		}
		return kvstore.AutoCompactionPeriodic, d, nil
	case "revision":
		if numErr != nil || n < 0 {
			break
		}
		if n == 0 {
			return kvstore.AutoCompactionOff, 0, nil
		}
		return kvstore.AutoCompactionRevision, time.Duration(n), nil
	default:
		return 0, 0, usageError("--auto-compaction-mode %q: want periodic or revision", mode)
	}
	return 0, 0, usageError("--auto-compaction-retention %q: not a retention for %s mode", retention, mode)
}
