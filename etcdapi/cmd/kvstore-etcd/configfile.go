package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// The --config-file is etcd's YAML configuration file (etcd's
// etcd.conf.yml.sample): the flags' names as keys, the TLS flags under
// client-transport-security and peer-transport-security. It is read with
// sigs.k8s.io/yaml, as etcd reads it: YAML converted to JSON, then
// decoded by the keys' JSON names, so a file etcd accepts decodes the same
// here (quoted or bare numbers, empty values, comments). go.yaml.in/yaml
// alone would decode by its own rules (YAML 1.1 booleans such as "on"),
// which etcd's files were not written for.
//
// Keys of etcd's file that kvstore-etcd has no use for (max-wals,
// max-snapshots, ...) are accepted and
// listed in a warning, so that an etcd file runs unchanged; a value of the
// wrong type for a key it serves is an error.

// fileConfig is the part of etcd's file that kvstore-etcd serves.
type fileConfig struct {
	Name                     *string       `json:"name"`
	DataDir                  *string       `json:"data-dir"`
	WALDir                   *string       `json:"wal-dir"`
	ListenClientURLs         *string       `json:"listen-client-urls"`
	AdvertiseClientURLs      *string       `json:"advertise-client-urls"`
	ListenPeerURLs           *string       `json:"listen-peer-urls"`
	InitialAdvertisePeerURLs *string       `json:"initial-advertise-peer-urls"`
	ListenMetricsURLs        *string       `json:"listen-metrics-urls"`
	InitialCluster           *string       `json:"initial-cluster"`
	InitialClusterToken      *string       `json:"initial-cluster-token"`
	InitialClusterState      *string       `json:"initial-cluster-state"`
	ClientTransportSecurity  *fileTLS      `json:"client-transport-security"`
	PeerTransportSecurity    *fileTLS      `json:"peer-transport-security"`
	AutoCompactionMode       *string       `json:"auto-compaction-mode"`
	AutoCompactionRetention  *numberString `json:"auto-compaction-retention"`
	QuotaBackendBytes        *int64        `json:"quota-backend-bytes"`
	EnablePprof              *bool         `json:"enable-pprof"`
	LogLevel                 *string       `json:"log-level"`
	Logger                   *string       `json:"logger"`
	LogOutputs               []string      `json:"log-outputs"`
	AuthTokenTTL             *int          `json:"auth-token-ttl"`
	HeartbeatInterval        *uint         `json:"heartbeat-interval"`
	ElectionTimeout          *uint         `json:"election-timeout"`
	MaxRequestBytes          *uint         `json:"max-request-bytes"`
	MaxTxnOps                *uint         `json:"max-txn-ops"`
	SnapshotCount            *uint64       `json:"snapshot-count"`
	WatchProgressInterval    *string       `json:"watch-progress-notify-interval"`
	WatchProgressIntervalOld *string       `json:"experimental-watch-progress-notify-interval"`
	InitialCorruptCheck      *bool         `json:"experimental-initial-corrupt-check"`
	CompactHashCheckEnabled  *bool         `json:"experimental-compact-hash-check-enabled"`
	CompactHashCheckTime     *string       `json:"experimental-compact-hash-check-time"`
}

type fileTLS struct {
	CertFile       string `json:"cert-file"`
	KeyFile        string `json:"key-file"`
	ClientCertAuth bool   `json:"client-cert-auth"`
	TrustedCAFile  string `json:"trusted-ca-file"`
}

// numberString is a value written as a string or a bare number
// (auto-compaction-retention: "1" or 1).
type numberString string

func (s *numberString) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = numberString(str)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, not %s", b)
	}
	*s = numberString(n.String())
	return nil
}

// loadConfigFile reads path over etcd's defaults. The keys it ignores are
// returned in config.ignoredKeys for a warning.
func loadConfigFile(path string) (config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config{}, usageError("--config-file: %v", err)
	}
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return config{}, usageError("--config-file %s: %v", path, err)
	}
	var f fileConfig
	if err := json.Unmarshal(jsonData, &f); err != nil {
		return config{}, usageError("--config-file %s: %v", path, err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(jsonData, &keys); err != nil {
		return config{}, usageError("--config-file %s: not a mapping of keys to values: %v", path, err)
	}
	cfg := defaultConfig()
	set(&cfg.name, f.Name)
	set(&cfg.dataDir, f.DataDir)
	set(&cfg.walDir, f.WALDir)
	set(&cfg.listenClientURLs, f.ListenClientURLs)
	set(&cfg.advertiseClientURLs, f.AdvertiseClientURLs)
	set(&cfg.listenPeerURLs, f.ListenPeerURLs)
	set(&cfg.advertisePeerURLs, f.InitialAdvertisePeerURLs)
	set(&cfg.listenMetricsURLs, f.ListenMetricsURLs)
	set(&cfg.initialCluster, f.InitialCluster)
	set(&cfg.initialClusterToken, f.InitialClusterToken)
	set(&cfg.initialClusterState, f.InitialClusterState)
	set(&cfg.autoCompactionMode, f.AutoCompactionMode)
	set(&cfg.logLevel, f.LogLevel)
	set(&cfg.logger, f.Logger)
	if f.LogOutputs != nil {
		cfg.logOutputs = strings.Join(f.LogOutputs, ",")
	}
	if f.AutoCompactionRetention != nil {
		cfg.autoCompactionRetention = string(*f.AutoCompactionRetention)
	}
	set(&cfg.quotaBackendBytes, f.QuotaBackendBytes)
	set(&cfg.enablePprof, f.EnablePprof)
	set(&cfg.authTokenTTL, f.AuthTokenTTL)
	set(&cfg.heartbeatInterval, f.HeartbeatInterval)
	set(&cfg.electionTimeout, f.ElectionTimeout)
	set(&cfg.maxRequestBytes, f.MaxRequestBytes)
	set(&cfg.maxTxnOps, f.MaxTxnOps)
	set(&cfg.snapshotCount, f.SnapshotCount)
	set(&cfg.watchProgressInterval, f.WatchProgressIntervalOld)
	set(&cfg.watchProgressInterval, f.WatchProgressInterval) // the current name wins
	set(&cfg.initialCorruptCheck, f.InitialCorruptCheck)
	set(&cfg.compactHashCheckEnabled, f.CompactHashCheckEnabled)
	set(&cfg.compactHashCheckTime, f.CompactHashCheckTime)
	if t := f.ClientTransportSecurity; t != nil {
		cfg.clientTLS = tlsFiles{certFile: t.CertFile, keyFile: t.KeyFile, trustedCAFile: t.TrustedCAFile, clientCertAuth: t.ClientCertAuth}
	}
	if t := f.PeerTransportSecurity; t != nil {
		cfg.peerTLS = tlsFiles{certFile: t.CertFile, keyFile: t.KeyFile, trustedCAFile: t.TrustedCAFile, clientCertAuth: t.ClientCertAuth}
	}
	served := servedKeys()
	for k := range keys {
		if !slices.Contains(served, k) {
			cfg.ignoredKeys = append(cfg.ignoredKeys, k)
		}
	}
	slices.Sort(cfg.ignoredKeys)
	return cfg, nil
}

// set copies the file's value of a key into dst, if the file has the key.
func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// servedKeys lists the keys fileConfig decodes: its fields' JSON names.
func servedKeys() []string {
	t := reflect.TypeFor[fileConfig]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		keys = append(keys, t.Field(i).Tag.Get("json"))
	}
	return keys
}
