package kvstore

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
	"github.com/kvstore/kvstore/internal/wire"
)

// What a node tells its host about the requests it serves: a warning for
// each request, and each log entry applied, that took longer than the slow
// request threshold (etcd logs "apply request took too long" past its
// 100 ms), and the request-level metric hooks (metrics.go). The clock is
// read for these only: nothing apply decides depends on it (Invariant 1).

// DefaultSlowRequestThreshold is how long a request may take before it is
// logged as slow: etcd's 100 ms.
const DefaultSlowRequestThreshold = 100 * time.Millisecond

// WithSlowRequestThreshold sets how long a request made through this node,
// or the apply of one log entry on it, may take before it is logged at
// warn level with its kind and duration (default
// DefaultSlowRequestThreshold); slow applies are also counted by the
// etcd_server_slow_apply_total metric. Zero turns the log and the count
// off; a negative threshold is ErrInvalidOption.
func WithSlowRequestThreshold(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalid("WithSlowRequestThreshold", "negative threshold %v", d)
		}
		c.slowRequestThreshold = d
		return nil
	}
}

// propose commits c through raft and returns its result, applied on this
// node (proposeCommand), counting it in the proposal metrics and logging
// it if it was slow.
func (n *Node) propose(ctx context.Context, c *wire.Command) (*applyResult, error) {
	start := time.Now()
	n.metrics.proposalStarted()
	res, err := n.proposeCommand(ctx, c)
	n.metrics.proposalEnded(err)
	n.warnIfSlow(c.Kind.String(), start)
	return res, err
}

// warnIfSlow logs a request of kind that started at start if it took
// longer than the slow request threshold. Callers defer it.
func (n *Node) warnIfSlow(kind string, start time.Time) {
	threshold := n.cfg.slowRequestThreshold
	if threshold == 0 {
		return
	}
	if took := time.Since(start); took > threshold {
		n.logger().Warn("request took too long", "member", n.cfg.id, "kind", kind,
			"took", took, "expected_duration", threshold)
	}
}

// applyWatch is what the FSM reports about its applies: metrics, and slow
// entries to the log. The zero value reports nothing.
type applyWatch struct {
	metrics   *nodeMetrics
	threshold time.Duration
	logger    *slog.Logger
	member    string
}

// newApplyWatch returns the FSM's applyWatch for a node with cfg and m.
func newApplyWatch(cfg *config, m *nodeMetrics) applyWatch {
	w := applyWatch{metrics: m, threshold: cfg.slowRequestThreshold, logger: cfg.logger, member: cfg.id}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	return w
}

// start is when the apply of an entry began, for applyObserved: the zero
// time, without reading the clock, when slow applies are not reported.
func (w *applyWatch) start() time.Time {
	if w.threshold == 0 {
		return time.Time{}
	}
	return time.Now()
}

// applyObserved applies the command in l (applyCommand), counts what it
// did and reports it if it took longer than the threshold since start
// (taken before the BeforeApply test hook, so a hook that sleeps makes a
// slow apply). Apply goroutine only.
func (f *fsm) applyObserved(l *raft.Log, start time.Time) *applyResult {
	w := &f.observe
	res := f.applyCommand(l.Data)
	w.metrics.applied(res)
	if w.threshold == 0 {
		return res
	}
	if took := time.Since(start); took > w.threshold {
		kind := "unknown"
		if c, err := wire.DecodeCommand(l.Data); err == nil {
			kind = c.Kind.String()
		}
		if w.metrics != nil {
			w.metrics.slowApplies.Inc()
		}
		w.logger.Warn("apply request took too long", "member", w.member, "kind", kind, "index", l.Index,
			"took", took, "expected_duration", w.threshold)
	}
	return res
}
