// Command kvstore-etcd runs one member of a kvstore cluster as an
// etcd-compatible server: etcd's v3 gRPC API (etcdapi) for etcdctl,
// clientv3 and everything built on them, with etcd's flag names where the
// meaning is the same, and /metrics, /health, /livez and /readyz on the
// same client URLs.
//
// A three-member cluster on one machine, each in its own shell:
//
//	kvstore-etcd --name infra1 --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
//	    --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
//	    --initial-cluster infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380
//
// and likewise infra2 and infra3 (etcdapi/README.md has the three
// commands). A member added with `etcdctl member add NAME
// --peer-urls=URL` starts with --initial-cluster-state existing and
// --initial-advertise-peer-urls URL: it derives the ID the cluster gave
// it from that URL and the cluster token, and the leader brings it up to
// date.
//
// Differences from etcd: a member has exactly one peer URL; kvstore's
// peer TLS is always mutual (--peer-client-cert-auth is implied); member
// IDs are derived from the peer URL and the token without etcd's time
// stamp (etcdapi.PeerMemberID says why); --config-file must be given
// alone (etcd ignores the other flags then).
//
// On SIGINT or SIGTERM the member ends its streams, lets requests in
// flight finish (up to 10 s) and closes. A second signal kills it.
//
// Exit status: 0 after a clean shutdown, 2 for a bad command line or
// config file, 1 for anything else (the log says what).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, filepath.Base(os.Args[0]), os.Args[1:], os.Stderr, stop))
}

// run is the whole program: it parses args, serves until ctx ends, and
// returns the exit status. It logs to stderr, in JSON lines as etcd does.
func run(ctx context.Context, program string, args []string, stderr io.Writer, onShutdown func()) int {
	cfg, err := parseCommandLine(program, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var s settings
	if err == nil {
		s, err = resolve(cfg)
	}
	if err != nil {
		if ue, ok := err.(*usageErr); !ok || !ue.reported {
			fmt.Fprintf(stderr, "%s: %v\n", program, err)
		}
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: s.logLevel}))
	if err := serve(ctx, s, logger, onShutdown); err != nil {
		logger.Error("member failed", "err", err)
		return 1
	}
	return 0
}
