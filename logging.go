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
// Levels map one to one, with hclog's Trace below slog's Debug.
type slogAdapter struct {
	l    *slog.Logger
	name string
	args []interface{}
	// level is the minimum level forwarded, shared with the loggers derived
	// by With and Named; atomic because raft logs from many goroutines.
	level *atomic.Int32
}

// newHCLogger returns an hclog.Logger over l; a nil l discards everything.
func newHCLogger(l *slog.Logger) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	a := &slogAdapter{l: l, level: new(atomic.Int32)}
	a.level.Store(int32(hclog.Trace))
	return a
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
	if level == hclog.Off || level < a.GetLevel() {
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
