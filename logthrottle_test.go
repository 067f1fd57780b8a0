package kvstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// recordLog is a slog.Handler keeping every record, for the tests.
type recordLog struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordLog) WithGroup(string) slog.Handler            { return h }
func (h *recordLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// lines returns the records with message msg whose attribute key is value
// (any record with msg if key is "").
func (h *recordLog) lines(msg, key, value string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Message == msg && (key == "" || attr(r, key) == value) {
			out = append(out, r)
		}
	}
	return out
}

// attr returns the value of r's attribute key as text, "" if it has none.
func attr(r slog.Record, key string) string {
	v := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// suppressedIn sums the "suppressed" counts of records.
func suppressedIn(t *testing.T, records []slog.Record) int {
	t.Helper()
	total := 0
	for _, r := range records {
		if s := attr(r, "suppressed"); s != "" {
			var n int
			if _, err := fmt.Sscan(s, &n); err != nil {
				t.Fatalf("suppressed=%q: %v", s, err)
			}
			total += n
		}
	}
	return total
}

// newThrottledLogger returns a raft-named adapter over a recording handler
// with its limiter, as Open builds them.
func newThrottledLogger() (hclog.Logger, *peerLogLimiter, *recordLog) {
	h := &recordLog{}
	l := slog.New(h)
	limit := newPeerLogLimiter(l)
	return newHCLogger(l, limit).Named("raft"), limit, h
}

var errUnreachable = errors.New("peer unreachable")

// heartbeatFailed logs raft's heartbeat error to the peer at addr, as
// replication.go does.
func heartbeatFailed(l hclog.Logger, addr string) {
	l.Error("failed to heartbeat to", "peer", raft.ServerAddress(addr), "backoff time", 10*time.Millisecond, "error", errUnreachable)
}

// A flood of one peer error becomes its first line plus one summary a
// window, whose counts add up to the flood.
func TestPeerErrorFloodIsSummarised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, limit, h := newThrottledLogger()
		const every = 10 * time.Millisecond
		const total = 9500 // 95 s
		for range total {
			heartbeatFailed(l, "n2")
			time.Sleep(every)
		}
		lines := h.lines("failed to heartbeat to", "peer", "n2")
		// At 0 s the first line, at 30, 60 and 90 s a summary each of the
		// 2,999 repeats since the line before.
		if len(lines) != 4 {
			t.Fatalf("%d lines for 9,500 failures over 95 s, want 4", len(lines))
		}
		if attr(lines[0], "suppressed") != "" || attr(lines[0], "error") != "peer unreachable" || lines[0].Level != slog.LevelError {
			t.Errorf("first line: %v %s %s", lines[0].Level, lines[0].Message, recordAttrs(lines[0]))
		}
		for i, r := range lines[1:] {
			if got := attr(r, "suppressed"); got != "2999" {
				t.Errorf("summary %d: suppressed=%s, want 2999", i+1, got)
			}
			if got := attr(r, "interval"); got != "30s" {
				t.Errorf("summary %d: interval=%s, want 30s", i+1, got)
			}
			if r.Level != slog.LevelError || attr(r, "component") != "raft" || attr(r, "error") != "peer unreachable" {
				t.Errorf("summary %d: %v %s", i+1, r.Level, recordAttrs(r))
			}
		}
		// The repeats since the last summary come out at Close, in a line
		// that only counts them.
		limit.flush()
		lines = h.lines("failed to heartbeat to", "peer", "n2")
		if len(lines) != 5 || attr(lines[4], "suppressed") != "499" || attr(lines[4], "interval") != "4.99s" {
			t.Fatalf("after flush: %d lines, the last %s", len(lines), recordAttrs(lines[len(lines)-1]))
		}
		if got := 4 + suppressedIn(t, lines); got != total {
			t.Errorf("lines and suppressed repeats add up to %d, want %d", got, total)
		}
	})
}

// Each (message, peer) has its own window: a flood for one peer does not
// hide the first error for another, nor another error for the same peer.
func TestPeerErrorsAreThrottledPerMessageAndPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _, h := newThrottledLogger()
		for i := range 100 {
			heartbeatFailed(l, "n2")
			if i == 50 {
				heartbeatFailed(l, "n3")
				l.Error("failed to appendEntries to", "peer", raft.Server{ID: "n2", Address: "n2:7000"}, "error", errUnreachable)
				l.Error("failed to make requestVote RPC", "target", raft.Server{ID: "n3", Address: "n3:7000"}, "error", errUnreachable, "term", 3)
				l.Warn("failed to contact", "server-id", raft.ServerID("n3"), "time", time.Second)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range []struct{ msg, key, peer string }{
			{"failed to heartbeat to", "peer", "n2"},
			{"failed to heartbeat to", "peer", "n3"},
			{"failed to appendEntries to", "", ""},
			{"failed to make requestVote RPC", "", ""},
			{"failed to contact", "server-id", "n3"},
		} {
			if got := len(h.lines(c.msg, c.key, c.peer)); got != 1 {
				t.Errorf("%q %s=%s: %d lines, want 1", c.msg, c.key, c.peer, got)
			}
		}
	})
}

// Records that name no peer, and those below WARN, are never throttled.
func TestOnlyPeerWarningsAreThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _, h := newThrottledLogger()
		for range 10 {
			l.Error("failed to take snapshot", "error", errUnreachable)
			l.Info("updating peer", "peer", raft.ServerID("n2"))
		}
		if got := len(h.lines("failed to take snapshot", "", "")); got != 10 {
			t.Errorf("%d of 10 errors naming no peer logged", got)
		}
		if got := len(h.lines("updating peer", "", "")); got != 10 {
			t.Errorf("%d of 10 info lines naming a peer logged", got)
		}
	})
}

// State changes and the steps of a healthy election come out at INFO;
// raft's warnings about real trouble stay WARN.
func TestRaftElectionStepsAreInfo(t *testing.T) {
	l, _, h := newThrottledLogger()
	l.Info("entering follower state", "leader-id", "")
	l.Info("entering candidate state", "term", 2)
	l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", raft.ServerAddress(""), "last-leader-id", raft.ServerID(""))
	l.Warn("Election timeout reached, restarting election")
	l.Info("election won", "term", 2, "tally", 2)
	l.Info("entering leader state", "leader", "n1")
	l.Warn("new leader elected, stepping down")
	l.Warn("rejecting pre-vote request since our last term is greater", "candidate", raft.ServerAddress("n2"), "last-term", 2, "last-candidate-term", 1)
	l.Warn("rejecting vote request since our last index is greater", "candidate", raft.ServerAddress("n2"), "last-index", 9, "last-candidate-index", 8)
	l.Warn("failed to contact quorum of nodes, stepping down")
	l.Warn("rejecting vote request since node is not in configuration", "from", raft.ServerAddress("n9"))
	l.Error("failed to heartbeat to", "peer", raft.ServerAddress("n2"), "error", errUnreachable)
	want := map[string]slog.Level{
		"entering follower state":                                   slog.LevelInfo,
		"entering candidate state":                                  slog.LevelInfo,
		"heartbeat timeout reached, starting election":              slog.LevelInfo,
		"Election timeout reached, restarting election":             slog.LevelInfo,
		"election won":                                              slog.LevelInfo,
		"entering leader state":                                     slog.LevelInfo,
		"new leader elected, stepping down":                         slog.LevelInfo,
		"rejecting pre-vote request since our last term is greater": slog.LevelInfo,
		"rejecting vote request since our last index is greater":    slog.LevelInfo,
		"failed to contact quorum of nodes, stepping down":          slog.LevelWarn,
		"rejecting vote request since node is not in configuration": slog.LevelWarn,
		"failed to heartbeat to":                                    slog.LevelError,
	}
	if len(h.records) != len(want) {
		t.Fatalf("%d records, want %d", len(h.records), len(want))
	}
	for _, r := range h.records {
		if r.Level != want[r.Message] {
			t.Errorf("%q at %v, want %v", r.Message, r.Level, want[r.Message])
		}
	}
	// The hclog level set on the adapter applies to the level kvstore logs at.
	l.SetLevel(hclog.Warn)
	l.Warn("heartbeat timeout reached, starting election")
	if len(h.records) != len(want) {
		t.Errorf("an election step passed a WARN level as %v", h.records[len(h.records)-1].Level)
	}
}

// When the peer is reachable again its pending repeats are summarised and
// a line says so; its next failure is a first line again.
func TestPeerRecoveryEndsTheThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, limit, h := newThrottledLogger()
		for range 4500 { // 45 s
			heartbeatFailed(l, "n2:7000")
			l.Error("failed to appendEntries to", "peer", raft.Server{ID: "n2", Address: "n2:7000"}, "error", errUnreachable)
			time.Sleep(10 * time.Millisecond)
		}
		heartbeatFailed(l, "n3:7000")
		limit.recovered("raft", "n2", "n2:7000")
		for _, lines := range [][]slog.Record{
			h.lines("failed to heartbeat to", "peer", "n2:7000"),
			h.lines("failed to appendEntries to", "", ""),
		} {
			if len(lines) != 3 || attr(lines[1], "suppressed") != "2999" || attr(lines[2], "suppressed") != "1499" {
				t.Errorf("%d lines, want the first, a summary of 2999 and one of 1499 at recovery: %v", len(lines), recordsAttrs(lines))
			}
		}
		back := h.lines("peer reachable again", "peer", "n2")
		if len(back) != 1 || back[0].Level != slog.LevelInfo || attr(back[0], "unreachable-for") != "45s" {
			t.Fatalf("recovery lines: %d, %v", len(back), recordsAttrs(back))
		}
		// n3 is not affected; n2 failing again is news.
		limit.recovered("raft", "n4")
		if got := len(h.lines("peer reachable again", "", "")); got != 1 {
			t.Errorf("%d recovery lines after a peer that never failed recovered, want 1", got)
		}
		heartbeatFailed(l, "n2:7000")
		if got := h.lines("failed to heartbeat to", "peer", "n2:7000"); len(got) != 4 || attr(got[3], "suppressed") != "" {
			t.Errorf("a failure after recovery: %d lines, want it logged as new", len(got))
		}
	})
}

// The table forgets keys quiet for a window, logging their pending counts
// when it does, and never grows past peerLogMaxKeys: records beyond it pass
// unthrottled.
func TestPeerLogLimiterMemoryIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, limit, h := newThrottledLogger()
		heartbeatFailed(l, "n2")
		heartbeatFailed(l, "n2")
		for i := range 2 * peerLogMaxKeys {
			heartbeatFailed(l, fmt.Sprint("p", i))
		}
		limit.mu.Lock()
		size := len(limit.entries)
		limit.mu.Unlock()
		if size != peerLogMaxKeys {
			t.Fatalf("table holds %d keys, want the bound %d", size, peerLogMaxKeys)
		}
		if got := len(h.lines("failed to heartbeat to", "", "")); got != 1+2*peerLogMaxKeys {
			t.Fatalf("%d lines for 1 repeated and %d distinct peers, want each distinct one logged", got, 2*peerLogMaxKeys)
		}

		time.Sleep(peerLogWindow)
		heartbeatFailed(l, "n3")
		limit.mu.Lock()
		size = len(limit.entries)
		limit.mu.Unlock()
		if size != 1 {
			t.Errorf("after a quiet window the table holds %d keys, want only the new one", size)
		}
		if got := h.lines("failed to heartbeat to", "peer", "n2"); len(got) != 2 || attr(got[1], "suppressed") != "1" {
			t.Errorf("n2's pending repeat was not logged when its entry expired: %d lines", len(got))
		}
	})
}

// Goroutines flooding the same keys lose no count.
func TestPeerLogLimiterConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, limit, h := newThrottledLogger()
		const workers, each = 8, 1000
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for range each {
					heartbeatFailed(l, fmt.Sprint("n", w%2))
					time.Sleep(time.Duration(1+w) * time.Millisecond)
				}
			})
		}
		wg.Wait()
		logged := len(h.lines("failed to heartbeat to", "", ""))
		limit.flush()
		lines := h.lines("failed to heartbeat to", "", "")
		if got := logged + suppressedIn(t, lines); got != workers*each {
			t.Errorf("lines and suppressed repeats add up to %d, want %d", got, workers*each)
		}
	})
}

func recordAttrs(r slog.Record) string {
	s := ""
	r.Attrs(func(a slog.Attr) bool {
		s += " " + a.String()
		return true
	})
	return s
}

func recordsAttrs(rs []slog.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Message+recordAttrs(r))
	}
	return out
}
