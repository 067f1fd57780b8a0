package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kvstore/kvstore"
)

// The "snapshot" subcommands, as etcdctl snapshot save and etcdutl
// snapshot status / restore:
//
//	node snapshot save FILE [--endpoint http://127.0.0.1:2379]
//	node snapshot status FILE
//	node snapshot restore FILE --id ID --data-dir DIR --initial-cluster id=host:port,... --cluster-token TOKEN [--log-store wal|bolt] [--wal-dir DIR]
//
// save downloads a backup from a running member's GET /v1/snapshot, checks
// it and only then renames it to FILE; restore prepares one member's data
// dir of a new cluster (README.md walks through it).
const snapshotUsage = `usage:
  %[1]s snapshot save FILE [--endpoint URL]
  %[1]s snapshot status FILE
  %[1]s snapshot restore FILE --id ID --data-dir DIR --initial-cluster id=host:port,... --cluster-token TOKEN [--log-store wal|bolt] [--wal-dir DIR]
`

// runSnapshot runs a snapshot subcommand and returns the exit status: 0,
// 2 for a bad command line, 1 for a failure (written to stderr).
func runSnapshot(ctx context.Context, program string, args []string, stdout, stderr io.Writer) int {
	err := snapshotCommand(ctx, program, args, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, snapshotUsage, program)
		return 2
	default:
		fmt.Fprintf(stderr, "%s snapshot: %v\n", program, err)
		return 1
	}
}

func snapshotCommand(ctx context.Context, program string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("snapshot: want save, status or restore")
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet(program+" snapshot "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var endpoint, id, dataDir, initialCluster, token, logStore, walDir string
	switch sub {
	case "save":
		fs.StringVar(&endpoint, "endpoint", "http://127.0.0.1:2379", "client API of the member to back up")
	case "status":
	case "restore":
		fs.StringVar(&id, "id", "", "member ID this data dir is for")
		fs.StringVar(&dataDir, "data-dir", "", "data dir to create (absent or empty)")
		fs.StringVar(&initialCluster, "initial-cluster", "", "members of the new cluster: id=host:port,...")
		fs.StringVar(&token, "cluster-token", "", "the new cluster's token (give it a new one)")
		fs.StringVar(&logStore, "log-store", "wal", "raft log store: wal or bolt")
		fs.StringVar(&walDir, "wal-dir", "", "directory of the raft log, apart from --data-dir (absent or empty); start the node with the same --wal-dir")
	default:
		return usageError("snapshot: unknown subcommand %q: want save, status or restore", sub)
	}
	file := ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, snapshotUsage, program)
			return err
		}
		return usageError("snapshot %s: %v", sub, err)
	}
	extra := fs.Args()
	if file == "" && len(extra) > 0 {
		file, extra = extra[0], extra[1:]
	}
	if len(extra) > 0 {
		return usageError("snapshot %s: unexpected argument %q", sub, extra[0])
	}
	if file == "" {
		return usageError("snapshot %s: no FILE", sub)
	}
	switch sub {
	case "save":
		return saveSnapshot(ctx, http.DefaultClient, endpoint, file, stdout, stderr)
	case "status":
		return snapshotStatus(file, stdout)
	}
	switch {
	case id == "":
		return usageError("snapshot restore: --id is required")
	case dataDir == "":
		return usageError("snapshot restore: --data-dir is required")
	case initialCluster == "":
		return usageError("snapshot restore: --initial-cluster is required")
	case token == "":
		return usageError("snapshot restore: --cluster-token is required (a new one for the new cluster)")
	}
	peers, err := parseInitialCluster(initialCluster)
	if err != nil {
		return err
	}
	kind, err := parseLogStore(logStore)
	if err != nil {
		return err
	}
	return restoreSnapshot(file, dataDir, id, token, kind, walDir, peers, stdout)
}

// saveSnapshot downloads a backup into a temporary file beside file,
// checks it whole, and renames it to file.
func saveSnapshot(ctx context.Context, client *http.Client, endpoint, file string, stdout, stderr io.Writer) (err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/v1/snapshot", nil)
	if err != nil {
		return usageError("snapshot save: --endpoint %q: %v", endpoint, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s: %s", endpoint, resp.Status, strings.TrimSpace(string(body)))
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".part-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	progress := newProgress(stderr)
	n, err := io.Copy(io.MultiWriter(tmp, progress), resp.Body)
	progress.done()
	if err != nil {
		return fmt.Errorf("download interrupted after %d bytes: %w", n, err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	status, err := kvstore.ReadBackupStatus(tmp)
	if err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "saved %s: ", file)
	printStatus(stdout, status)
	return nil
}

func snapshotStatus(file string, stdout io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	status, err := kvstore.ReadBackupStatus(f)
	if err != nil {
		return err
	}
	printStatus(stdout, status)
	return nil
}

func printStatus(w io.Writer, s *kvstore.BackupStatus) {
	var members []string
	for _, p := range s.Members {
		members = append(members, p.ID+"="+p.Address)
	}
	fmt.Fprintf(w, "revision %d, compact revision %d, hash %d, %d keys, %d leases, %d bytes, format %d\n",
		s.Revision, s.CompactRevision, s.Hash, s.Keys, s.Leases, s.TotalSize, s.FormatVersion)
	fmt.Fprintf(w, "taken %s from member %s of cluster %q (%s) at raft index %d\n",
		s.Created.UTC().Format(time.RFC3339), s.Member, s.ClusterToken, strings.Join(members, ","), s.Index)
}

func restoreSnapshot(file, dataDir, id, token string, kind kvstore.LogStore, walDir string, peers []kvstore.Peer, stdout io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := []kvstore.RestoreOption{kvstore.RestoreMember(id), kvstore.RestoreCluster(peers...),
		kvstore.RestoreClusterToken(token), kvstore.RestoreLogStore(kind)}
	if walDir != "" {
		opts = append(opts, kvstore.RestoreWALDir(walDir))
	}
	status, err := kvstore.Restore(f, dataDir, opts...)
	if err != nil {
		return err
	}
	listen := ""
	for _, p := range peers {
		if p.ID == id {
			listen = p.Address
		}
	}
	storage := ""
	if kind == kvstore.LogStoreBolt {
		storage += " --log-store bolt"
	}
	if walDir != "" {
		storage += " --wal-dir " + walDir
	}
	fmt.Fprintf(stdout, "restored revision %d (hash %d, %d keys) into %s; start it with:\n  node --id %s --data-dir %s%s --listen %s --cluster-token %s --client-listen ...\n",
		status.Revision, status.Hash, status.Keys, dataDir, id, dataDir, storage, listen, token)
	return nil
}

// progress writes a transfer's progress to a terminal, at most four
// times a second; to anything else it writes nothing.
type progress struct {
	out   io.Writer // nil: not a terminal
	start time.Time
	last  time.Time
	n     int64
}

func newProgress(stderr io.Writer) *progress {
	p := &progress{start: time.Now()}
	if f, ok := stderr.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			p.out = f
		}
	}
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.out != nil && time.Since(p.last) >= 250*time.Millisecond {
		p.last = time.Now()
		p.print()
	}
	return len(b), nil
}

func (p *progress) print() {
	secs := max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.out, "\rreceived %.1f MiB (%.1f MiB/s)", float64(p.n)/(1<<20), float64(p.n)/(1<<20)/secs)
}

func (p *progress) done() {
	if p.out != nil {
		p.print()
		fmt.Fprintln(p.out)
	}
}
