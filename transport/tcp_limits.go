package transport

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connLimits caps a TCP transport's accepted connections ([WithMaxInboundConns],
// [WithMaxHandshakingConns]). A connection counts as inbound from its accept until it is
// closed, and as handshaking from its accept until its TLS handshake and preamble are done
// (or have failed). Over either cap, the accept loop closes the connection at once.
//
// Only the accept loop adds to the counts, and it checks them first; everyone else only
// subtracts. So a check followed by an add never overshoots a cap, without a lock.
type connLimits struct {
	maxInbound, maxHandshaking int64
	inbound, handshaking       atomic.Int64

	mu       sync.Mutex // guards the fields below
	lastWarn time.Time  // when a refusal was last logged
	unlogged int        // refusals since then, not logged
}

// refusalLogInterval is how often, at most, refusals at the caps are logged: a flood must not
// turn into a flood of log lines.
const refusalLogInterval = time.Second

// admit counts a connection just accepted as inbound and handshaking, or returns why it must be
// refused. Only the accept loop calls it.
func (l *connLimits) admit() (refusal string) {
	switch {
	case l.inbound.Load() >= l.maxInbound:
		return "too many inbound connections"
	case l.handshaking.Load() >= l.maxHandshaking:
		return "too many inbound connections still in their handshake"
	}
	l.inbound.Add(1)
	l.handshaking.Add(1)
	return ""
}

// refused logs a refusal made at now at warn level, unless one was logged less than
// refusalLogInterval before; then it is counted, and the next warning says how many were not
// logged.
func (l *connLimits) refused(logger *slog.Logger, remote net.Addr, refusal string, now time.Time) {
	l.mu.Lock()
	if !l.lastWarn.IsZero() && now.Sub(l.lastWarn) < refusalLogInterval {
		l.unlogged++
		l.mu.Unlock()
		return
	}
	unlogged := l.unlogged
	l.lastWarn, l.unlogged = now, 0
	l.mu.Unlock()
	logger.Warn("transport: refused connection", "remote", remote.String(), "reason", refusal,
		"inbound", l.inbound.Load(), "max_inbound", l.maxInbound,
		"handshaking", l.handshaking.Load(), "max_handshaking", l.maxHandshaking,
		"refused_unlogged", unlogged)
}
