package transport

import (
	"sync"
	"time"
)

// callServer is the server's side of one Call connection as Close sees it: what it needs to
// send goaway (see the Call protocol in tcp_call.go) before the connection closes.
type callServer struct {
	w *frameWriter

	mu           sync.Mutex // guards the fields below; taken before the transport's mu
	lastAccepted uint64     // the highest request ID handed to a handler
	goingAway    bool       // set by goAway: no request is accepted any more
}

// accept hands request id to a handler by running start, which reports whether the handler
// started, unless the connection is going away. It reports whether the request was accepted.
// The two happen under s.mu, so that the ID goaway sends covers exactly the requests handed
// to a handler.
func (s *callServer) accept(id uint64, start func() bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.goingAway || !start() {
		return false
	}
	s.lastAccepted = max(s.lastAccepted, id)
	return true
}

// goAway stops accepting requests and sends goaway with the last accepted ID, waiting at most
// wait for it to be written. It reports whether it was.
func (s *callServer) goAway(wait time.Duration) bool {
	s.mu.Lock()
	s.goingAway = true
	last := s.lastAccepted
	s.mu.Unlock()
	return s.w.sendAndWait(encodeFrame(frameGoAway, last, nil, nil), wait)
}

// writeGoAwayNow writes goaway with no request accepted straight to c, within wait; only for
// a connection whose frameWriter does not run.
func writeGoAwayNow(c *trackedConn, wait time.Duration) {
	_ = c.raw.SetWriteDeadline(time.Now().Add(wait))
	_, _ = c.Write(encodeFrame(frameGoAway, 0, nil, nil))
}

// addCallServer registers s for Close's goaway; it reports false if t is closed.
func (t *TCPTransport) addCallServer(s *callServer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if t.callServers == nil {
		t.callServers = make(map[*callServer]struct{})
	}
	t.callServers[s] = struct{}{}
	return true
}

func (t *TCPTransport) removeCallServer(s *callServer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.callServers, s)
}

// goAwayCallServers sends goaway on every Call connection t serves, in parallel, and returns
// once each was written or gave up after the RPC timeout (a peer that does not read). Close
// calls it after shut, when no handler can start any more, and before closing the connections.
func (t *TCPTransport) goAwayCallServers() {
	t.mu.Lock()
	servers := make([]*callServer, 0, len(t.callServers))
	for s := range t.callServers {
		servers = append(servers, s)
	}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { s.goAway(t.cfg.rpcTimeout) })
	}
	wg.Wait()
}

// transportHooks lets this package's tests stop a TCPTransport's goroutines at chosen points,
// to force an interleaving. Each hook, if set, must be set before the transport is used.
type transportHooks struct {
	// beforeCallReply runs on a Call connection's reader goroutine before it reads each frame.
	beforeCallReply func()
}
