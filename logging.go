package kvstore

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter hands hashicorp/raft, its transports and its stores an
// hclog.Logger that writes to the host's *slog.Logger. Names become a
// "component" attribute; hclog's key/value pairs become slog attributes.
// Levels map one to one, with hclog's Trace below slog's Debug, except for
// the raft messages raftLevel moves; records at WARN or above that name a
// peer go through the node's peerLogLimiter (logthrottle.go).
type slogAdapter struct {
	l    *slog.Logger
	name string
	args []interface{}
	// level is the minimum level forwarded, shared with the loggers derived
	// by With and Named; atomic because raft logs from many goroutines.
	level *atomic.Int32
	// limit, shared with the derived loggers, throttles repeated per-peer
	// records; nil lets everything through.
	limit *peerLogLimiter
}

// newHCLogger returns an hclog.Logger over l, throttling repeated per-peer
// records through limit unless it is nil; a nil l discards everything.
func newHCLogger(l *slog.Logger, limit *peerLogLimiter) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	a := &slogAdapter{l: l, level: new(atomic.Int32), limit: limit}
	a.level.Store(int32(hclog.Trace))
	return a
}

// raftLevel is the level kvstore logs raft's message msg at, raft's own
// level being level. raft logs at WARN the steps of every election, which
// happen at each start and each change of leader, however healthy the
// cluster: that a follower's heartbeat timer ran out before it heard of a
// leader, a split vote, a vote refused to a candidate whose log is behind,
// a leader stepping down for a newer one. They are state changes, logged
// at INFO like raft's "entering leader state". What stays WARN or ERROR is
// what an operator should look at: a peer that cannot be reached, a leader
// that lost its quorum, a vote asked by a node outside the configuration.
func raftLevel(msg string, level hclog.Level) hclog.Level {
	if level != hclog.Warn {
		return level
	}
	switch msg {
	case "heartbeat timeout reached, starting election",
		"Election timeout reached, restarting election",
		"new leader elected, stepping down",
		"rejecting vote request since our last term is greater",
		"rejecting vote request since our last index is greater",
		"rejecting pre-vote request since our last term is greater",
		"rejecting pre-vote request since our last index is greater":
		return hclog.Info
	}
	return level
}

const slogLevelTrace = slog.LevelDebug - 4

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slogLevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (a *slogAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	if level == hclog.Off {
		return
	}
	level = raftLevel(msg, level)
	if level < a.GetLevel() {
		return
	}
	sl := slogLevel(level)
	ctx := context.Background()
	if !a.l.Enabled(ctx, sl) {
		return
	}
	attrs := make([]interface{}, 0, len(a.args)+len(args)+2)
	if a.name != "" {
		attrs = append(attrs, "component", a.name)
	}
	attrs = appendFormatted(attrs, a.args)
	attrs = appendFormatted(attrs, args)
	if a.limit != nil && level >= hclog.Warn {
		if peer := peerOf(args); peer != "" {
			a.limit.log(sl, a.name, msg, peer, attrs)
			return
		}
	}
	a.l.Log(ctx, sl, msg, attrs...)
}

// appendFormatted appends args to attrs, formatting the values hclog
// formats itself: hclog.Fmt's printf values (raft logs configurations with
// them, which slog would print as a raw slice) and hclog.Hex, Octal and
// Binary numbers.
func appendFormatted(attrs, args []interface{}) []interface{} {
	for _, v := range args {
		switch f := v.(type) {
		case hclog.Format:
			if len(f) > 0 {
				if format, ok := f[0].(string); ok {
					v = fmt.Sprintf(format, f[1:]...)
				}
			}
		case hclog.Hex:
			v = fmt.Sprintf("0x%x", int(f))
		case hclog.Octal:
			v = fmt.Sprintf("0%o", int(f))
		case hclog.Binary:
			v = fmt.Sprintf("0b%b", int(f))
		}
		attrs = append(attrs, v)
	}
	return attrs
}

func (a *slogAdapter) Trace(msg string, args ...interface{}) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...interface{}) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...interface{})  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...interface{})  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...interface{}) { a.Log(hclog.Error, msg, args...) }

func (a *slogAdapter) enabled(level hclog.Level) bool {
	return level >= a.GetLevel() && a.l.Enabled(context.Background(), slogLevel(level))
}

func (a *slogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *slogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *slogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *slogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *slogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *slogAdapter) ImpliedArgs() []interface{} { return a.args }

func (a *slogAdapter) With(args ...interface{}) hclog.Logger {
	c := *a
	c.args = append(append([]interface{}(nil), a.args...), args...)
	return &c
}

func (a *slogAdapter) Name() string { return a.name }

func (a *slogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel sets the minimum level this adapter forwards; the slog handler's
// own level still applies.
func (a *slogAdapter) SetLevel(level hclog.Level) { a.level.Store(int32(level)) }

func (a *slogAdapter) GetLevel() hclog.Level { return hclog.Level(a.level.Load()) }

func (a *slogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return adapterWriter{a}
}

// adapterWriter turns lines written by a standard logger into Info records.
type adapterWriter struct{ a *slogAdapter }

func (w adapterWriter) Write(p []byte) (int, error) {
	w.a.Info(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
