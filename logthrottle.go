package kvstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// While a member is down, raft on the leader logs an error for every failed
// heartbeat to it, about twice a second for as long as the outage lasts
// (thousands of lines an hour), and similar lines for appends, snapshots
// and vote requests. A peerLogLimiter keeps those readable: of the records
// at WARN or above that name a peer, it logs the first for each
// (component, message, peer), and then at most one line per
// peerLogWindow, carrying the number of repeats left out.
//
// peerLogWindow is 30 seconds: an hour-long outage then costs about 120
// lines per message instead of thousands, and an operator watching the log
// (or an alert scraping it every minute) still sees within half a minute
// that the failure goes on, with a count that tells a flapping link from a
// dead peer.
const peerLogWindow = 30 * time.Second

// peerLogMaxKeys bounds the limiter's table. Past it, records of new keys
// are logged unthrottled rather than dropped: a cluster would need hundreds
// of peers failing in several ways at once to get there.
const peerLogMaxKeys = 1024

// peerLogLimiter rate-limits a node's repeated per-peer warnings and
// errors, writing what it lets through to l. It reads the time with
// time.Now (virtual inside a testing/synctest bubble). It is safe for
// concurrent use; records are written outside its lock, so a slow handler
// holds up only its caller.
//
// Memory is bounded: an entry lives while its key keeps recurring and is
// dropped, its pending count logged, once the key has been quiet for a
// window (noticed by the next throttled record, or by flush), when its
// peer is reachable again (recovered), and the table never holds more than
// peerLogMaxKeys entries.
type peerLogLimiter struct {
	l *slog.Logger

	mu        sync.Mutex
	entries   map[peerLogKey]*peerLogEntry
	lastSweep time.Time
}

// peerLogKey identifies one kind of repeated record.
type peerLogKey struct {
	component, msg, peer string
}

// peerLogEntry is what the limiter knows of one key.
type peerLogEntry struct {
	level slog.Level
	// first is when the key first occurred (since it entered the table),
	// line when a line for it was last logged, seen when it last occurred.
	first, line, seen time.Time
	// suppressed counts the repeats left out since line; attrs are the
	// attributes of the latest of them, for a summary without a new record.
	suppressed int
	attrs      []any
}

// peerLogRecord is a record the limiter decided to write.
type peerLogRecord struct {
	level slog.Level
	msg   string
	attrs []any
}

// newPeerLogLimiter returns a limiter writing to l, nil if l is nil.
func newPeerLogLimiter(l *slog.Logger) *peerLogLimiter {
	if l == nil {
		return nil
	}
	return &peerLogLimiter{l: l, entries: make(map[peerLogKey]*peerLogEntry)}
}

// log writes, drops or summarises one record that names peer; attrs are
// its slog attributes, component included.
func (p *peerLogLimiter) log(level slog.Level, component, msg, peer string, attrs []any) {
	now := time.Now()
	key := peerLogKey{component: component, msg: msg, peer: peer}
	p.mu.Lock()
	out := p.sweep(now, false)
	e := p.entries[key]
	switch {
	case e == nil:
		if len(p.entries) >= peerLogMaxKeys {
			out = append(out, p.sweep(now, true)...)
		}
		if len(p.entries) < peerLogMaxKeys {
			p.entries[key] = &peerLogEntry{level: level, first: now, line: now, seen: now}
		}
		out = append(out, peerLogRecord{level, msg, attrs})
	case now.Sub(e.line) < peerLogWindow:
		e.suppressed++
		e.seen, e.level, e.attrs = now, level, attrs
	default:
		if e.suppressed > 0 {
			attrs = append(attrs[:len(attrs):len(attrs)], "suppressed", e.suppressed, "interval", now.Sub(e.line))
		}
		out = append(out, peerLogRecord{level, msg, attrs})
		e.line, e.seen, e.suppressed, e.attrs = now, now, 0, nil
	}
	p.mu.Unlock()
	p.write(out)
}

// sweep drops the entries quiet for a window, returning the summaries of
// those with repeats pending. Unless forced it runs at most once a window.
// p.mu is held.
func (p *peerLogLimiter) sweep(now time.Time, force bool) []peerLogRecord {
	if !force && now.Sub(p.lastSweep) < peerLogWindow {
		return nil
	}
	p.lastSweep = now
	var out []peerLogRecord
	for k, e := range p.entries {
		if now.Sub(e.seen) >= peerLogWindow {
			out = appendSummary(out, k, e)
			delete(p.entries, k)
		}
	}
	return out
}

// appendSummary appends the summary of e's pending repeats, if it has any.
func appendSummary(out []peerLogRecord, k peerLogKey, e *peerLogEntry) []peerLogRecord {
	if e.suppressed == 0 {
		return out
	}
	attrs := append(e.attrs[:len(e.attrs):len(e.attrs)], "suppressed", e.suppressed, "interval", e.seen.Sub(e.line))
	return append(out, peerLogRecord{e.level, k.msg, attrs})
}

// recovered ends the entries of the peer known by any of names (its ID,
// its address): their pending repeats are summarised, and if there were
// any entries an INFO line says the peer is reachable again and how long
// after its first failure.
func (p *peerLogLimiter) recovered(component string, names ...string) {
	if p == nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	var out []peerLogRecord
	var first time.Time
	for k, e := range p.entries {
		for _, name := range names {
			if k.peer == name && name != "" {
				out = appendSummary(out, k, e)
				if first.IsZero() || e.first.Before(first) {
					first = e.first
				}
				delete(p.entries, k)
				break
			}
		}
	}
	p.mu.Unlock()
	if !first.IsZero() {
		out = append(out, peerLogRecord{slog.LevelInfo, "peer reachable again",
			[]any{"component", component, "peer", names[0], "unreachable-for", now.Sub(first)}})
	}
	p.write(out)
}

// flush summarises every pending repeat and empties the table; Close calls
// it so that no count is lost.
func (p *peerLogLimiter) flush() {
	if p == nil {
		return
	}
	p.mu.Lock()
	var out []peerLogRecord
	for k, e := range p.entries {
		out = appendSummary(out, k, e)
		delete(p.entries, k)
	}
	p.mu.Unlock()
	p.write(out)
}

func (p *peerLogLimiter) write(records []peerLogRecord) {
	for _, r := range records {
		p.l.Log(context.Background(), r.level, r.msg, r.attrs...)
	}
}

// peerOf returns the peer a raft record names, "" if none: raft passes
// peers as raft.Server (named here by its ID), raft.ServerID or
// raft.ServerAddress values, under varying keys.
func peerOf(args []any) string {
	for i := 1; i < len(args); i += 2 {
		switch v := args[i].(type) {
		case raft.Server:
			return string(v.ID)
		case raft.ServerID:
			return string(v)
		case raft.ServerAddress:
			return string(v)
		}
	}
	return ""
}

// runPeerLogRecovery tells the limiter when raft's heartbeats reach a peer
// again after failing, so that its pending counts come out with a line
// saying it recovered. raft names the peer by ID; its heartbeat errors name
// it by address, found in the configuration. Observations are dropped when
// this goroutine falls behind: an entry missed then is summarised when it
// expires or at Close. It runs until the node closes.
func (n *Node) runPeerLogRecovery() {
	resumed := make(chan raft.Observation, 64)
	observer := raft.NewObserver(resumed, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.ResumedHeartbeatObservation)
		return ok
	})
	n.raft.RegisterObserver(observer)
	defer n.raft.DeregisterObserver(observer)
	for {
		select {
		case o := <-resumed:
			id := o.Data.(raft.ResumedHeartbeatObservation).PeerID
			names := []string{string(id)}
			if f := n.raft.GetConfiguration(); f.Error() == nil {
				for _, s := range f.Configuration().Servers {
					if s.ID == id {
						names = append(names, string(s.Address))
					}
				}
			}
			n.peerLogs.recovered("raft", names...)
		case <-n.closed:
			return
		}
	}
}
