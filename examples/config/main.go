// Command config shows a service that reloads its typed settings live
// from a three-node kvstore cluster running in this process.
//
//	go run ./examples/config
//
// The service watches its settings through one member and applies each
// change as it commits; an operator changes them through another member:
// a first version, a compare-and-swap update, an invalid value (refused
// before it is written), and a value written as raw bytes that does not
// decode (reported; the service keeps its last good settings). Then the
// program stops the cluster and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/config"
	"github.com/kvstore/kvstore/transport"
)

// Settings are the service's settings.
type Settings struct {
	LogLevel  string   `json:"log_level"`
	RateLimit int      `json:"rate_limit"`
	Features  []string `json:"features,omitempty"`
}

// Validate refuses settings the service cannot run with; Config runs it
// before every write.
func (s Settings) Validate() error {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.LogLevel) {
		return fmt.Errorf("unknown log level %q", s.LogLevel)
	}
	if s.RateLimit <= 0 {
		return fmt.Errorf("rate limit must be positive, not %d", s.RateLimit)
	}
	return nil
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run starts the cluster, the service and the operator, and returns when
// the operator is done and the service has seen every change.
func run(ctx context.Context, w io.Writer) error {
	out := &lockedWriter{w: w} // the service and the operator both print
	nodes, err := startCluster(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()

	serviceCfg, err := config.New[Settings](nodes[1], "app/settings")
	if err != nil {
		return err
	}
	operatorCfg, err := config.New[Settings](nodes[2], "app/settings")
	if err != nil {
		return err
	}

	// The operator's first version goes in before the service starts: it
	// loads it from the watch's snapshot.
	if _, err := operatorCfg.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: 100}); err != nil {
		return err
	}

	svcCtx, stopService := context.WithCancel(ctx)
	defer stopService()
	watcher, err := serviceCfg.Watch(svcCtx)
	if err != nil {
		return err
	}
	reloads := make(chan Settings)
	serviceDone := make(chan error, 1)
	go func() { serviceDone <- serve(watcher, out, reloads) }()

	step := func(what string, do func() error, want int) error {
		fmt.Fprintf(out, "operator: %s\n", what)
		if err := do(); err != nil {
			return err
		}
		if want == 0 {
			return nil
		}
		select {
		case s := <-reloads:
			if s.RateLimit != want {
				return fmt.Errorf("service reloaded rate limit %d, want %d", s.RateLimit, want)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := step("(settings loaded at start)", func() error { return nil }, 100); err != nil {
		return err
	}
	err = step("double the rate limit (compare-and-swap)", func() error {
		_, _, err := operatorCfg.Update(ctx, "api", func(s Settings) (Settings, error) {
			s.RateLimit *= 2
			s.Features = append(s.Features, "burst")
			return s, nil
		})
		return err
	}, 200)
	if err != nil {
		return err
	}
	err = step("set log level \"loud\"", func() error {
		_, err := operatorCfg.Put(ctx, "api", Settings{LogLevel: "loud", RateLimit: 200})
		if !errors.Is(err, config.ErrInvalid) {
			return fmt.Errorf("invalid settings were not refused: %v", err)
		}
		fmt.Fprintf(out, "operator: refused, nothing written: %v\n", err)
		return nil
	}, 0)
	if err != nil {
		return err
	}
	err = step("write raw bytes that are not JSON", func() error {
		_, err := nodes[0].Put(ctx, []byte("app/settings/api"), []byte("rate_limit=500"))
		return err
	}, 0)
	if err != nil {
		return err
	}
	err = step("put good settings back", func() error {
		_, err := operatorCfg.Put(ctx, "api", Settings{LogLevel: "warn", RateLimit: 300})
		return err
	}, 300)
	if err != nil {
		return err
	}
	stopService()
	if err := <-serviceDone; !errors.Is(err, context.Canceled) {
		return fmt.Errorf("service: %w", err)
	}
	fmt.Fprintln(out, "done")
	return nil
}

// serve is the service's reload loop: it applies each valid version of
// its "api" settings and keeps the last good one when a stored value does
// not decode. It returns why the watch ended.
func serve(w *config.Watcher[Settings], out io.Writer, reloads chan<- Settings) error {
	var current Settings
	for ev := range w.Events() {
		if ev.Name != "api" {
			continue
		}
		switch {
		case ev.Err != nil:
			fmt.Fprintf(out, "service: keeping rate limit %d: %v\n", current.RateLimit, ev.Err)
		case ev.Type == config.EventDelete:
			fmt.Fprintf(out, "service: settings deleted, keeping rate limit %d\n", current.RateLimit)
		case ev.Type == config.EventPut:
			current = ev.New
			fmt.Fprintf(out, "service: reloaded at revision %d: log level %s, rate limit %d, features %v\n",
				ev.Revision, current.LogLevel, current.RateLimit, current.Features)
			reloads <- current
		}
	}
	return w.Err()
}

// startCluster opens three in-memory members on an in-memory network and
// waits for a leader.
func startCluster(ctx context.Context) ([]*kvstore.Node, error) {
	network := transport.NewNetwork()
	peers := []kvstore.Peer{{ID: "n1", Address: "n1"}, {ID: "n2", Address: "n2"}, {ID: "n3", Address: "n3"}}
	var nodes []*kvstore.Node
	for _, p := range peers {
		tr, err := network.Join(p.Address)
		if err != nil {
			return closeAll(nodes, err)
		}
		n, err := kvstore.Open("", kvstore.WithID(p.ID), kvstore.WithTransport(tr),
			kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstore.WithBootstrap(peers...),
			kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 0))
		if err != nil {
			tr.Close()
			return closeAll(nodes, err)
		}
		nodes = append(nodes, n)
	}
	if _, err := nodes[0].WaitLeader(ctx); err != nil {
		return closeAll(nodes, err)
	}
	return nodes, nil
}

func closeAll(nodes []*kvstore.Node, err error) ([]*kvstore.Node, error) {
	for _, n := range nodes {
		n.Close()
	}
	return nil, err
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
