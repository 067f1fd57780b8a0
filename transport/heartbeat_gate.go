package transport

import "sync"

// heartbeatGate keeps raft's heartbeat fast path from running while raft's main loop handles a
// TimeoutNow, in both transports.
//
// The fast path runs raft's heartbeat handler on the transport's goroutine, beside raft's main
// loop. hashicorp/raft v1.7.3 handles TimeoutNow on its main loop by setting its state to
// Candidate and only then marking the candidacy as a leadership transfer's; a heartbeat of the
// old leader handled between the two finds a candidate that is not (yet) a transfer's, and
// turns it back into a follower of the same term. The transfer then fails after an election
// timeout ("leadership transfer timeout"), with the cluster's leader unchanged: in kvtest's
// virtual time about one transfer in ten did. With the gate, a heartbeat that arrives while a
// TimeoutNow is being handled goes through the Consumer instead, so raft's main loop sees it
// after the TimeoutNow, when the candidacy is marked; one already on the fast path finishes
// before the TimeoutNow is handed over.
//
// The zero value is ready to use.
type heartbeatGate struct {
	mu sync.RWMutex // read-held by a heartbeat on the fast path, held by a TimeoutNow's delivery
}

// enterFast reports whether a heartbeat may take the fast path now; if so, the caller calls
// leaveFast when the handler has returned. It never blocks.
func (g *heartbeatGate) enterFast() bool { return g.mu.TryRLock() }

func (g *heartbeatGate) leaveFast() { g.mu.RUnlock() }

// closeFast waits for the heartbeats on the fast path to finish and keeps new ones off it
// until openFast: a TimeoutNow's delivery holds it from before raft's main loop can take the
// request until its answer has come back.
func (g *heartbeatGate) closeFast() { g.mu.Lock() }

func (g *heartbeatGate) openFast() { g.mu.Unlock() }
