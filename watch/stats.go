package watch

// Stats is a hub's account of its watches, for metrics.
type Stats struct {
	// Watches is the number of watches registered now.
	Watches int
	// CatchingUp is how many of them are behind the hub and read from the
	// store's history on a goroutine of their own (etcd's unsynced, or
	// slow, watchers).
	CatchingUp int
	// EventsSent is the number of events handed to watches' channels since
	// the hub was created, whether from Notify or from history.
	EventsSent uint64
}

// Stats returns the hub's current Stats. It takes the hub's lock and
// visits every watch once, so its cost follows the number of watches; it
// is meant for a metrics scrape, not for a loop.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{Watches: len(h.all), EventsSent: h.eventsSent}
	for _, w := range h.all {
		if w.state == stateCatchingUp {
			s.CatchingUp++
		}
	}
	return s
}
