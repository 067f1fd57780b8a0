package kvstore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestSlogAdapter(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	l := newHCLogger(slog.New(h), nil).Named("raft").With("node", "n1")
	l.Info("entering follower state", "term", 3)
	l.Trace("below the handler's level")
	l.Named("snapshots").Warn("slow", "ms", 12)
	l.StandardLogger(nil).Print("from a standard logger")
	// raft formats some values with hclog.Fmt: they must reach slog as
	// text, not as a printed slice of the format and its arguments.
	l.Info("initial configuration", "servers", hclog.Fmt("%+v", []struct{ ID string }{{"n1"}}), "mask", hclog.Hex(255))
	out := buf.String()
	for _, want := range []string{
		`msg="initial configuration" component=raft node=n1 servers=[{ID:n1}] mask=0xff`,
		`level=INFO msg="entering follower state" component=raft node=n1 term=3`,
		`level=WARN msg=slow component=raft.snapshots node=n1 ms=12`,
		`msg="from a standard logger" component=raft`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "below the handler") {
		t.Errorf("trace passed a debug-level handler:\n%s", out)
	}
	if !l.IsDebug() || l.IsTrace() {
		t.Error("levels do not follow the handler")
	}
	l.SetLevel(hclog.Error)
	if l.IsWarn() {
		t.Error("SetLevel ignored")
	}
	// nil logger discards.
	newHCLogger(nil, nil).Error("nothing", "k", "v")
}
