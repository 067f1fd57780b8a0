package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
)

func TestParseInitialCluster(t *testing.T) {
	good := []struct {
		in   string
		want []kvstore.Peer
	}{
		{"n1=127.0.0.1:2380", []kvstore.Peer{{ID: "n1", Address: "127.0.0.1:2380"}}},
		{"n1=10.0.0.1:2380,n2=10.0.0.2:2380, n3 = db3.example.com:2380 ", []kvstore.Peer{
			{ID: "n1", Address: "10.0.0.1:2380"}, {ID: "n2", Address: "10.0.0.2:2380"}, {ID: "n3", Address: "db3.example.com:2380"}}},
		{"a=[::1]:2380,b=[::1]:2381", []kvstore.Peer{{ID: "a", Address: "[::1]:2380"}, {ID: "b", Address: "[::1]:2381"}}},
	}
	for _, tc := range good {
		got, err := parseInitialCluster(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, why string }{
		{"", "entry 1 is empty"},
		{"n1=127.0.0.1:2380,", "entry 2 is empty"},
		{"n1", "want id=host:port"},
		{"=127.0.0.1:2380", "has no ID"},
		{"n1=", "want host:port"},
		{"n1=127.0.0.1", "want host:port"},
		{"n1=http://127.0.0.1:2380", "without a URL scheme"},
		{"n1=127.0.0.1:http", "not a number"},
		{"n1=127.0.0.1:70000", "not a number"},
		{"n1=127.0.0.1:0", "port 0"},
		{"n1=127.0.0.1:2380,n1=127.0.0.1:2381", `ID "n1" is listed twice`},
		{"n1=127.0.0.1:2380,n2=127.0.0.1:2380", "share the address"},
		{"n 1=127.0.0.1:2380", "white space"},
		{"n1=a=b:1", "want host:port"},
	}
	for _, tc := range bad {
		_, err := parseInitialCluster(tc.in)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.why)
		}
	}
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	pem := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("not checked here"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, ca := pem("cert.pem"), pem("key.pem"), pem("ca.pem")
	base := []string{"--id", "n1", "--data-dir", dir, "--listen", "127.0.0.1:2380"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }

	cfg, err := parseFlags("node", with("--initial-cluster", "n1=127.0.0.1:2380,n2=127.0.0.1:2381"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.advertise != "127.0.0.1:2380" || cfg.clientListen != "127.0.0.1:2379" || cfg.clusterToken != kvstore.DefaultClusterToken ||
		len(cfg.initialCluster) != 2 || cfg.tls() || cfg.learner || cfg.identityChecked() || cfg.logStore != kvstore.LogStoreWAL || cfg.walDir != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = parseFlags("node", with("--listen", "0.0.0.0:2380", "--advertise", "10.0.0.1:2380", "--join", "10.0.0.2:2380, 10.0.0.3:2380",
		"--learner", "--cluster-token", "prod", "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--log-level", "debug", "--log-store", "bolt", "--wal-dir", "/fast/wal"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.advertise != "10.0.0.1:2380" || !reflect.DeepEqual(cfg.join, []string{"10.0.0.2:2380", "10.0.0.3:2380"}) || !cfg.learner ||
		cfg.clusterToken != "prod" || !cfg.tls() || cfg.logLevel.String() != "DEBUG" || !cfg.identityChecked() ||
		cfg.logStore != kvstore.LogStoreBolt || cfg.walDir != "/fast/wal" {
		t.Fatalf("every flag: %+v", cfg)
	}
	// Identity binding is on with TLS unless turned off; turning it off
	// without TLS is harmless.
	tlsFlags := []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca}
	if cfg, err := parseFlags("node", with(append(tlsFlags, "--peer-identity-check=false")...), io.Discard); err != nil || !cfg.tls() || cfg.identityChecked() {
		t.Fatalf("--peer-identity-check=false: %+v, %v", cfg, err)
	}
	if _, err := parseFlags("node", with("--peer-identity-check=false"), io.Discard); err != nil {
		t.Fatalf("--peer-identity-check=false without TLS: %v", err)
	}
	if cfg.limits != defaultLimits() {
		t.Fatalf("default limits: %v", cfg.limits)
	}
	cfg, err = parseFlags("node", with("--client-max-connections", "10", "--max-concurrent-streams", "0", "--client-header-timeout", "1s",
		"--client-body-timeout", "0", "--client-idle-timeout", "1m", "--client-max-header-bytes", "4096", "--max-request-bytes", "2048"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (limits{maxConnections: 10, maxStreams: 0, headerTimeout: time.Second, bodyTimeout: 0, idleTimeout: time.Minute,
		maxHeaderBytes: 4096, maxRequestBytes: 2048}); cfg.limits != want {
		t.Fatalf("limit flags: %v, want %v", cfg.limits, want)
	}
	// 0 is no limit for the API too; the body limit is twice the request limit.
	if o := cfg.limits.applyTo(apiOptions{}).withDefaults(); o.maxStreams != noLimit || o.bodyTimeout != noLimit || o.maxBodyBytes != 4096 {
		t.Fatalf("API options from the limits: streams %d, body timeout %v, body bytes %d", o.maxStreams, o.bodyTimeout, o.maxBodyBytes)
	}
	// Auto-compaction: periodic 5m by default, as the library; revision
	// mode counts revisions; off.
	for _, tc := range []struct {
		args []string
		want autoCompaction
	}{
		{nil, autoCompaction{kvstore.AutoCompactionPeriodic, kvstore.DefaultAutoCompactionRetention}},
		{[]string{"--auto-compaction-retention", "1h"}, autoCompaction{kvstore.AutoCompactionPeriodic, time.Hour}},
		{[]string{"--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000"}, autoCompaction{kvstore.AutoCompactionRevision, 10000}},
		{[]string{"--auto-compaction-mode", "off"}, autoCompaction{mode: kvstore.AutoCompactionOff}},
	} {
		if cfg, err := parseFlags("node", with(tc.args...), io.Discard); err != nil || cfg.autoCompaction != tc.want {
			t.Fatalf("%q: %+v %v, want %+v", tc.args, cfg.autoCompaction, err, tc.want)
		}
	}
	// Neither --initial-cluster nor --join: a restart from the data dir.
	if _, err := parseFlags("node", base, io.Discard); err != nil {
		t.Fatalf("restart flags: %v", err)
	}
	if _, err := parseFlags("node", []string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}

	bad := []struct {
		args []string
		why  string
	}{
		{[]string{"--data-dir", dir, "--listen", "127.0.0.1:2380"}, "--id is required"},
		{[]string{"--id", "n1", "--listen", "127.0.0.1:2380"}, "--data-dir is required"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus (node --help lists the flags)"},
		{[]string{"--id", "n1", "--data-dir", dir}, "--listen is required"},
		{with("--id", "n=1"), "must not contain"},
		{with("--listen", "2380"), "want host:port"},
		{with("--listen", ":2380"), "give --advertise"},
		{with("--listen", "[::]:2380"), "give --advertise"},
		{with("--advertise", "0.0.0.0:2380"), "needs a host"},
		{with("--listen", "127.0.0.1:0"), "port 0 cannot be dialled"},
		{with("--client-listen", "localhost"), "--client-listen"},
		{with("--initial-cluster", "n2=127.0.0.1:2381"), "does not list this member"},
		{with("--initial-cluster", "n1=127.0.0.1:9999"), "advertised peer address is 127.0.0.1:2380"},
		{with("--initial-cluster", "n1=127.0.0.1:2380", "--join", "127.0.0.1:2381"), "exclude each other"},
		{with("--learner"), "--learner needs --join"},
		{with("--join", "127.0.0.1:2380"), "own address"},
		{with("--join", "127.0.0.1:2381,127.0.0.1:2381"), "listed twice"},
		{with("--join", "127.0.0.1:2381,"), "entry 2 is empty"},
		{with("--cluster-token", ""), "--cluster-token"},
		{with("--tls-cert", cert), "--tls-key, --tls-ca"},
		{with("--tls-cert", cert, "--tls-key", key, "--tls-ca", filepath.Join(dir, "missing.pem")), "--tls-ca"},
		{with("--tls-cert", dir, "--tls-key", key, "--tls-ca", ca), "is a directory"},
		{with("--peer-identity-check"), "needs mutual TLS"},
		{with("--log-level", "loud"), "--log-level"},
		{with("--slow-request-threshold", "-1ms"), "--slow-request-threshold -1ms must not be negative"},
		{with("--client-max-connections", "-1"), "--client-max-connections must not be negative"},
		{with("--max-concurrent-streams", "-5"), "--max-concurrent-streams must not be negative"},
		{with("--client-header-timeout", "-1s"), "--client-header-timeout must not be negative"},
		{with("--client-body-timeout", "-1ms"), "--client-body-timeout must not be negative"},
		{with("--client-idle-timeout", "-1m"), "--client-idle-timeout must not be negative"},
		{with("--client-body-timeout", "5"), "invalid value"}, // a duration needs its unit
		{with("--client-max-header-bytes", "0"), "--client-max-header-bytes must be positive"},
		{with("--max-request-bytes", "0"), "--max-request-bytes must be positive"},
		{with("--max-request-bytes", "1.5MiB"), "invalid value"},
		{with("--log-store", "memory"), `--log-store "memory": want wal or bolt`},
		{with("--log-store", ""), `--log-store "": want wal or bolt`},
		{with("--auto-compaction-mode", "hourly"), `--auto-compaction-mode "hourly": want periodic, revision or off`},
		{with("--auto-compaction-retention", "1"), "periodic mode wants a duration"}, // etcd's hours: ambiguous
		{with("--auto-compaction-retention", "10ms"), "periodic mode wants a duration"},
		{with("--auto-compaction-mode", "revision"), "revision mode wants a positive count"}, // 5m is no count
		{with("--auto-compaction-mode", "revision", "--auto-compaction-retention", "-3"), "revision mode wants a positive count"},
		{with("--bogus"), "flag provided but not defined"},
		{with("extra"), `unexpected argument "extra"`},
	}
	for _, tc := range bad {
		_, err := parseFlags("node", tc.args, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.why)
		}
	}
}

// FuzzParseInitialCluster checks that the parser never panics, that what
// it accepts is well formed, and that printing it back parses the same.
func FuzzParseInitialCluster(f *testing.F) {
	f.Add("n1=127.0.0.1:2380,n2=127.0.0.1:2381")
	f.Add(" a = [::1]:1 ,b=host:2")
	f.Add("n1=a=b:1")
	f.Add(",")
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := parseInitialCluster(s)
		if err != nil {
			if !errors.Is(err, errUsage) {
				t.Fatalf("%q: untyped error %v", s, err)
			}
			return
		}
		var parts []string
		for _, p := range peers {
			if p.ID == "" || p.Address == "" || strings.ContainsAny(p.ID, "=,") {
				t.Fatalf("%q: accepted %+v", s, p)
			}
			parts = append(parts, p.ID+"="+p.Address)
		}
		again, err := parseInitialCluster(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(again, peers) {
			t.Fatalf("%q: %v reparsed as %v, %v", s, peers, again, err)
		}
	})
}

// TestUsage: --help names the program as it was invoked, the ways to start
// a member and every flag, with two dashes as the README writes them.
func TestUsage(t *testing.T) {
	var out strings.Builder
	if _, err := parseFlags("kvnode", []string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help := out.String()
	for _, want := range []string{
		"Usage: kvnode --id ID --data-dir DIR --listen HOST:PORT [flags]\n",
		"kvnode --id n1 --data-dir /var/lib/kv/n1 --listen 10.0.0.1:2380 \\\n      --initial-cluster n1=",
		"--join 10.0.0.1:2380\n",
		"\n  --initial-cluster string\n",
		"\n  --learner\n",
		"(default 127.0.0.1:2379)",
		"Exit status:",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "Usage of") || strings.Contains(help, "\n  -id") {
		t.Errorf("help in the flag package's default form:\n%s", help)
	}
	// Every flag the README's table lists is in the help.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "\n## Flags\n")
	table, _, _ = strings.Cut(table, "\n## ")
	names := regexp.MustCompile("`--([a-z-]+)`").FindAllStringSubmatch(table, -1)
	if len(names) < 20 {
		t.Fatalf("README's flag table: found %d flags", len(names))
	}
	for _, m := range names {
		if !strings.Contains(help, "\n  --"+m[1]+" ") && !strings.Contains(help, "\n  --"+m[1]+"\n") {
			t.Errorf("help lacks --%s", m[1])
		}
	}
}
