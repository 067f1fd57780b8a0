package kvstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// logCapture is a slog.Handler keeping the records of every node of a
// cluster, until stopped (a cluster's shutdown logs its own errors).
type logCapture struct {
	mu      sync.Mutex
	records []slog.Record
	stopped bool
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.records = append(h.records, r.Clone())
	}
	return nil
}

// stop ends the capture and returns what it holds.
func (h *logCapture) stop() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	return h.records
}

// find returns the captured records with message msg.
func (h *logCapture) find(msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

func recordText(r slog.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %q", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	return b.String()
}

func recordAttr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// A healthy cluster's start, election included, and its steady state log
// nothing at WARN or above; the election's state changes come out at INFO.
func TestNormalStartLogsNoWarnings(t *testing.T) {
	for run := range 10 {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &logCapture{}
				c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithLogger(slog.New(logs))))
				ctx := context.Background()
				for i, n := range append(c.Followers(), c.WaitLeader()) {
					if _, err := n.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
						t.Fatal(err)
					}
				}
				c.WaitApplied()
				time.Sleep(10 * time.Second) // virtual: steady heartbeats
				records := logs.stop()
				for _, r := range records {
					if r.Level >= slog.LevelWarn {
						t.Errorf("normal start logged %s", recordText(r))
					}
				}
				for _, msg := range []string{"entering follower state", "entering leader state", "election won", "heartbeat timeout reached, starting election"} {
					found := false
					for _, r := range records {
						if r.Message == msg {
							found = true
							if r.Level != slog.LevelInfo {
								t.Errorf("%s, want INFO", recordText(r))
							}
						}
					}
					if !found {
						t.Errorf("no %q logged", msg)
					}
				}
			})
		})
	}
}

// While a follower is down for minutes, the leader logs its first failure
// to reach it and a summary every 30 seconds, not an error per heartbeat;
// when it is back, the counts left are logged and a line says so.
func TestDownMemberErrorsAreThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logCapture{}
		c := kvtest.NewCluster(t, 3, kvtest.WithNodeOptions(kvstore.WithLogger(slog.New(logs))))
		down := c.Index(c.Followers()[0])
		peer := c.ID(down)
		c.Stop(down)
		const outage = 2 * time.Minute
		time.Sleep(outage)
		c.Restart(down)
		c.WaitApplied()
		deadline := time.Now().Add(kvtest.Timeout)
		for len(logs.find("peer reachable again")) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no line says the member is reachable again")
			}
			time.Sleep(time.Millisecond)
		}
		records := logs.stop()

		// Per (message, peer): the first line, then at most one a window
		// (the last at recovery).
		lines := map[string]int{}
		suppressed := map[string]int64{}
		for _, r := range records {
			if r.Level < slog.LevelWarn {
				continue
			}
			key := r.Message + " " + recordAttr(r, "peer").String()
			lines[key]++
			if v := recordAttr(r, "suppressed"); v.Kind() == slog.KindInt64 {
				suppressed[key] += v.Int64()
			}
		}
		maxLines := 2 + int(outage/(30*time.Second))
		for key, n := range lines {
			if n > maxLines {
				t.Errorf("%d lines of %q over a %v outage, want at most %d", n, key, outage, maxLines)
			}
		}
		heartbeats := "failed to heartbeat to " + peer
		if lines[heartbeats] < 2 || suppressed[heartbeats] < 1000 {
			t.Errorf("heartbeat failures to %s: %d lines, %d suppressed; want a first line and summaries of thousands",
				peer, lines[heartbeats], suppressed[heartbeats])
		}
		// The first failure is a heartbeat after the stop, the recovery one
		// after the restart: the span is the outage give or take a few.
		back := logs.find("peer reachable again")
		if len(back) != 1 || back[0].Level != slog.LevelInfo || recordAttr(back[0], "peer").String() != peer ||
			recordAttr(back[0], "unreachable-for").Duration() < outage-time.Second {
			for _, r := range back {
				t.Log(recordText(r))
			}
			t.Errorf("want one INFO line saying %s is reachable again after about %v", peer, outage)
		}
	})
}
