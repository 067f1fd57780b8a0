package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
)

// Every bad command line or config file is refused with exit status 2
// and a message that names the problem, before anything is opened.
func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	badType := filepath.Join(dir, "bad-type.yml")
	os.WriteFile(badType, []byte("quota-backend-bytes: lots\n"), 0o644)
	notYAML := filepath.Join(dir, "not-yaml.yml")
	os.WriteFile(notYAML, []byte("name: [unclosed\n"), 0o644)
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte("name: a\n"), 0o644)
	dataDir := filepath.Join(dir, "data")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--quota-backend-bytes=many"}, "invalid value"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--initial-cluster-state=maybe"}, `--initial-cluster-state "maybe"`},
		{[]string{"--name="}, "--name is empty"},
		{[]string{"--listen-peer-urls=http://127.0.0.1:1,http://127.0.0.1:2", "--initial-advertise-peer-urls=http://127.0.0.1:1"}, "exactly one peer URL"},
		{[]string{"--listen-peer-urls=127.0.0.1:1"}, "--listen-peer-urls"},
		{[]string{"--listen-peer-urls=https://127.0.0.1:1", "--initial-advertise-peer-urls=http://127.0.0.1:1"}, "--listen-peer-urls is https://"},
		{[]string{"--data-dir=" + dataDir, "--initial-cluster=other=http://localhost:2380"}, "does not name this member"},
		{[]string{"--data-dir=" + dataDir, "--initial-cluster=default=http://127.0.0.1:9"}, "--initial-cluster gives default=http://127.0.0.1:9"},
		{[]string{"--data-dir=" + dataDir, "--initial-cluster=default=http://localhost:2380,default=http://localhost:2381"}, "named twice"},
		{[]string{"--listen-client-urls=https://127.0.0.1:1"}, "--cert-file and --key-file are required"},
		{[]string{"--client-cert-auth"}, "--client-cert-auth needs --trusted-ca-file"},
		{[]string{"--listen-peer-urls=https://127.0.0.1:1", "--initial-advertise-peer-urls=https://127.0.0.1:1", "--initial-cluster=default=https://127.0.0.1:1"}, "--peer-cert-file"},
		{[]string{"--auto-compaction-mode=periodic", "--auto-compaction-retention=soon"}, `--auto-compaction-retention "soon"`},
		{[]string{"--auto-compaction-mode=revision", "--auto-compaction-retention=1h"}, `--auto-compaction-retention "1h"`},
		{[]string{"--auto-compaction-mode=sometimes"}, `--auto-compaction-mode "sometimes"`},
		{[]string{"--log-level=loud"}, `--log-level "loud"`},
		{[]string{"--auth-token-ttl=0"}, "--auth-token-ttl 0"},
		{[]string{"--experimental-compact-hash-check-time=often"}, `--experimental-compact-hash-check-time "often"`},
		{[]string{"--experimental-compact-hash-check-time=-1m"}, `--experimental-compact-hash-check-time "-1m"`},
		{[]string{"--heartbeat-interval=0"}, "--heartbeat-interval 0"},
		{[]string{"--heartbeat-interval=300"}, "--election-timeout 1000ms: should be at least 5 times --heartbeat-interval (300ms)"},
		{[]string{"--election-timeout=60000"}, "--election-timeout 60000ms: at most 50000ms"},
		{[]string{"--heartbeat-interval=1", "--election-timeout=5"}, "--election-timeout 5ms: at least 10ms"},
		{[]string{"--election-timeout=soon"}, "invalid value"},
		{[]string{"--max-request-bytes=0"}, "--max-request-bytes 0"},
		{[]string{"--max-txn-ops=0"}, "--max-txn-ops 0"},
		{[]string{"--watch-progress-notify-interval=never"}, `--watch-progress-notify-interval "never"`},
		{[]string{"--logger=capnslog"}, `--logger "capnslog": only zap`},
		{[]string{"--log-outputs=stderr,"}, `--log-outputs "stderr,": an empty output`},
		{[]string{"--snapshot-count=-1"}, "invalid value"},
		{[]string{"--config-file=" + good, "--name=b"}, "--name given besides it"},
		{[]string{"--config-file=" + filepath.Join(dir, "missing.yml")}, "missing.yml"},
		{[]string{"--config-file=" + badType}, "quota-backend-bytes"},
		{[]string{"--config-file=" + notYAML}, "not-yaml.yml"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), "kvstore-etcd", tc.args, &stderr, nil); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	if _, err := os.Stat(dataDir); err == nil {
		t.Error("a refused command line created the data dir")
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), "kvstore-etcd", []string{"-h"}, &stderr, nil); code != 0 || !strings.Contains(stderr.String(), "-initial-cluster-token") {
		t.Errorf("-h: exit %d, %q", code, stderr.String())
	}
}

// An etcd config file and the same settings as flags resolve alike; the
// file's keys kvstore-etcd does not use are listed for a warning.
func TestConfigFileMatchesFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.conf.yml")
	os.WriteFile(file, []byte(`
name: infra1
data-dir: /var/lib/infra1
wal-dir: /var/lib/infra1-wal
snapshot-count: 10000
max-wals: 5
experimental-watch-progress-notify-interval: 5s
heartbeat-interval: 200
election-timeout: 2500
max-request-bytes: 4194304
max-txn-ops: 256
listen-peer-urls: https://10.0.0.1:2380
listen-client-urls: https://10.0.0.1:2379,http://127.0.0.1:2379
initial-advertise-peer-urls: https://10.0.0.1:2380
advertise-client-urls: https://10.0.0.1:2379
listen-metrics-urls: http://127.0.0.1:2381
initial-cluster: infra1=https://10.0.0.1:2380,infra2=https://10.0.0.2:2380
initial-cluster-token: tok
initial-cluster-state: 'new'
client-transport-security:
  cert-file: /c.pem
  key-file: /c-key.pem
  client-cert-auth: true
  trusted-ca-file: /ca.pem
  auto-tls: false
peer-transport-security:
  cert-file: /p.pem
  key-file: /p-key.pem
  client-cert-auth: true
  trusted-ca-file: /pca.pem
auto-compaction-mode: revision
auto-compaction-retention: 1000
quota-backend-bytes: 8589934592
enable-pprof: true
log-level: warn
logger: zap
log-outputs: [default, stdout]
auth-token-ttl: 60
experimental-initial-corrupt-check: false
experimental-compact-hash-check-time: 5m
`), 0o644)
	fromFile, err := parseCommandLine("kvstore-etcd", []string{"--config-file=" + file}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	fromFlags, err := parseCommandLine("kvstore-etcd", []string{
		"--name=infra1", "--data-dir=/var/lib/infra1", "--wal-dir=/var/lib/infra1-wal",
		"--listen-peer-urls=https://10.0.0.1:2380", "--listen-client-urls=https://10.0.0.1:2379,http://127.0.0.1:2379",
		"--initial-advertise-peer-urls=https://10.0.0.1:2380", "--advertise-client-urls=https://10.0.0.1:2379",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--initial-cluster=infra1=https://10.0.0.1:2380,infra2=https://10.0.0.2:2380", "--initial-cluster-token=tok",
		"--initial-cluster-state=new",
		"--cert-file=/c.pem", "--key-file=/c-key.pem", "--client-cert-auth", "--trusted-ca-file=/ca.pem",
		"--peer-cert-file=/p.pem", "--peer-key-file=/p-key.pem", "--peer-client-cert-auth", "--peer-trusted-ca-file=/pca.pem",
		"--auto-compaction-mode=revision", "--auto-compaction-retention=1000", "--quota-backend-bytes=8589934592",
		"--enable-pprof", "--log-level=warn",
		"--auth-token-ttl=60", "--experimental-initial-corrupt-check=false", "--experimental-compact-hash-check-time=5m",
		"--heartbeat-interval=200", "--election-timeout=2500", "--max-request-bytes=4194304", "--max-txn-ops=256",
		"--snapshot-count=10000", "--experimental-watch-progress-notify-interval=5s",
		"--logger=zap", "--log-outputs=default,stdout",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"max-wals"}; !reflect.DeepEqual(fromFile.ignoredKeys, want) {
		t.Errorf("ignored keys %v, want %v", fromFile.ignoredKeys, want)
	}
	fromFile.ignoredKeys = nil
	if !reflect.DeepEqual(fromFile, fromFlags) {
		t.Fatalf("from the file:\n%+v\nfrom flags:\n%+v", fromFile, fromFlags)
	}
	s, err := resolve(fromFile)
	if err != nil {
		t.Fatal(err)
	}
	if s.peerScheme != "https" || s.peerBind != "10.0.0.1:2380" || len(s.cluster) != 2 || s.cluster[1].Address != "10.0.0.2:2380" ||
		s.autoCompactionMode != kvstore.AutoCompactionRevision || s.autoCompactionRetention != 1000 || len(s.clientURLs) != 2 || len(s.metricsURLs) != 1 ||
		s.authTokenTTL != time.Minute || !s.clientCertAuth || s.initialCorruptCheck || s.corruptCheckEvery != 5*time.Minute ||
		s.electionTimeout != 2500*time.Millisecond || s.maxRequestBytes != 4<<20 || s.maxTxnOps != 256 ||
		s.snapshotCount != 10000 || s.watchProgressInterval != 5*time.Second || !slices.Equal(s.logOutputs, []string{"stderr", "stdout"}) {
		t.Errorf("resolved: %+v", s)
	}
}

// --auto-compaction-retention as etcd reads it.
func TestAutoCompactionRetention(t *testing.T) {
	for _, tc := range []struct {
		mode, retention string
		want            kvstore.AutoCompactionMode
		wantRetention   time.Duration
	}{
		{"periodic", "0", kvstore.AutoCompactionOff, 0},
		{"periodic", "1", kvstore.AutoCompactionPeriodic, time.Hour},
		{"periodic", "30m", kvstore.AutoCompactionPeriodic, 30 * time.Minute},
		{"periodic", "0s", kvstore.AutoCompactionOff, 0},
		{"revision", "0", kvstore.AutoCompactionOff, 0},
		{"revision", "500", kvstore.AutoCompactionRevision, 500},
	} {
		mode, retention, err := autoCompaction(tc.mode, tc.retention)
		if err != nil || mode != tc.want || retention != tc.wantRetention {
			t.Errorf("%s %s: %v %v %v; want %v %v", tc.mode, tc.retention, mode, retention, err, tc.want, tc.wantRetention)
		}
	}
}

// The command line kubeadm writes into etcd's static pod manifest is taken
// as it is.
func TestKubeadmCommandLine(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseCommandLine("kvstore-etcd", []string{
		"--advertise-client-urls=https://10.0.0.1:2379",
		"--cert-file=/etc/kubernetes/pki/etcd/server.crt",
		"--client-cert-auth=true",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--experimental-initial-corrupt-check=true",
		"--experimental-watch-progress-notify-interval=5s",
		"--initial-advertise-peer-urls=https://10.0.0.1:2380",
		"--initial-cluster=cp1=https://10.0.0.1:2380",
		"--key-file=/etc/kubernetes/pki/etcd/server.key",
		"--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.1:2379",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--listen-peer-urls=https://10.0.0.1:2380",
		"--name=cp1",
		"--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
		"--peer-client-cert-auth=true",
		"--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
		"--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
		"--snapshot-count=10000",
		"--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.name != "cp1" || len(s.clientURLs) != 2 || s.peerScheme != "https" || !s.clientCertAuth || s.snapshotCount != 10000 ||
		s.watchProgressInterval != 5*time.Second || !s.initialCorruptCheck || len(s.cluster) != 1 {
		t.Errorf("resolved: %+v", s)
	}
}
