package transport

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// admit enforces both caps; a connection ending its handshake frees a handshake slot only.
func TestConnLimitsAdmit(t *testing.T) {
	l := &connLimits{maxInbound: 2, maxHandshaking: 1}
	if r := l.admit(); r != "" {
		t.Fatalf("first connection refused: %s", r)
	}
	if r := l.admit(); !strings.Contains(r, "handshake") {
		t.Fatalf("second connection while the first handshakes: %q, want the handshake cap", r)
	}
	l.handshaking.Add(-1) // the first finished its handshake
	if r := l.admit(); r != "" {
		t.Fatalf("second connection refused: %s", r)
	}
	l.handshaking.Add(-1)
	if r := l.admit(); r != "too many inbound connections" {
		t.Fatalf("third connection: %q, want the inbound cap", r)
	}
	if l.inbound.Load() != 2 || l.handshaking.Load() != 0 {
		t.Fatalf("counts %d inbound, %d handshaking; want 2 and 0", l.inbound.Load(), l.handshaking.Load())
	}
}

// Refusals are logged at most once per interval, the next line counting those not logged.
func TestConnLimitsLogRefusalsOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	l := &connLimits{maxInbound: 2, maxHandshaking: 1}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4000}
	start := time.Unix(1_000_000, 0)
	l.refused(logger, remote, "too many inbound connections", start)
	for i := range 5 {
		l.refused(logger, remote, "too many inbound connections", start.Add(time.Duration(i)*100*time.Millisecond))
	}
	l.refused(logger, remote, "too many inbound connections", start.Add(refusalLogInterval))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "remote=192.0.2.1:4000") ||
		!strings.Contains(lines[0], "refused_unlogged=0") || !strings.Contains(lines[1], "refused_unlogged=5") {
		t.Fatalf("want two warnings, the second counting 5 refusals not logged:\n%s", buf.String())
	}
}
