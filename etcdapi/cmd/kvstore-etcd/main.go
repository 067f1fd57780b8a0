// Command kvstore-etcd runs one member of a kvstore cluster as an
// etcd-compatible server: etcd's v3 gRPC API (etcdapi) for etcdctl,
// clientv3 and everything built on them, with etcd's flag names where the
// meaning is the same, and /metrics, /health, /version, /livez and
// /readyz on the same client URLs.
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
// returns the exit status. It logs in JSON lines as etcd does, to stderr
// unless --log-outputs says otherwise.
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
	out, closeOutputs, err := logOutput(s.logOutputs, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --log-outputs: %v\n", program, err)
		return 1
	}
	defer closeOutputs()
	logger := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: s.logLevel}))
	if err := serve(ctx, s, logger, onShutdown); err != nil {
		logger.Error("member failed", "err", err)
		return 1
	}
	return 0
}

// logOutput returns the writer of --log-outputs: stderr (run's), stdout,
// and files opened for appending, all of them if several. closeFiles
// closes the files.
func logOutput(outputs []string, stderr io.Writer) (w io.Writer, closeFiles func(), err error) {
	var writers []io.Writer
	var files []*os.File
	closeFiles = func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, o := range outputs {
		switch o {
		case "stderr":
			writers = append(writers, stderr)
		case "stdout":
			writers = append(writers, os.Stdout)
		default:
			f, err := os.OpenFile(o, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				closeFiles()
				return nil, nil, err
			}
			files = append(files, f)
			writers = append(writers, f)
		}
	}
	return io.MultiWriter(writers...), closeFiles, nil
}
