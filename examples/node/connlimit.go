package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connLimitListener is a net.Listener that keeps at most max of the
// connections it accepted open at once; a connection counts from Accept
// until it is closed. Over the limit it accepts the connection, reads the
// request's headers, answers 503 with a JSON error (code
// too_many_connections, Retry-After: 1) and closes it; the request never
// reaches the server.
//
// Why refuse rather than hold new connections in Accept until one closes
// (as a semaphore in Accept would): keep-alive connections stay open for
// the idle timeout (2 min by default), so a held client would hang for
// minutes, its health checks timing out as if the node were dead, with
// nothing in the node to count. A refusal is immediate, says what
// happened, and is counted (refusals.connections). It costs a goroutine
// and a descriptor for at most refuseLinger each, and at most
// maxRefusing of them at once; past that, a connection over the limit is
// closed unanswered, so that a flood of connections cannot turn the
// refusals themselves into the resource it exhausts.
//
// The answer is plain HTTP/1.1: wrap the listener under TLS (tls.NewListener
// over this one), and a TLS client over the limit sees a failed handshake
// rather than the 503. That is no concern yet: the client API has no TLS.
//
// Close closes the listener, ends the refusals in progress and waits for
// their goroutines. Accept and Close are safe for concurrent use.
type connLimitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64 // connections accepted and not closed
	refused  *atomic.Int64
	logger   *slog.Logger
	response []byte // the 503
	maxRead  int64  // the most a refusal reads of a request

	mu       sync.Mutex
	closed   bool
	refusing map[net.Conn]struct{} // conns being answered, guarded by mu
	wg       sync.WaitGroup        // one per refusing conn
}

const (
	// refuseLinger bounds one refusal (answer): reading the request's
	// headers, writing the 503, reading until the client closes.
	refuseLinger = time.Second
	// maxRefusing bounds the refusals in progress. A refusal usually
	// takes a round trip, well under a millisecond on a LAN: 64 at once
	// answer tens of thousands of connections a second.
	maxRefusing = 64
)

// limitConnections wraps ln so that at most max connections are open at
// once (max > 0), counting refusals in refused. A refusal reads at most
// maxRead bytes of the request: as much as the server would read of one
// (headers and the largest body), so that a client refused in the middle
// of a large PUT gets the answer rather than a reset.
func limitConnections(ln net.Listener, max int, maxRead int64, refused *atomic.Int64, logger *slog.Logger) *connLimitListener {
	body, _ := json.Marshal(newErrorBody(
		fmt.Errorf("%w: %d open (--client-max-connections)", errTooManyConnections, max),
		"too_many_connections"))
	body = append(body, '\n')
	response := fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"+
		"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return &connLimitListener{
		Listener: ln, max: int64(max), refused: refused, logger: logger, response: response, maxRead: maxRead,
		refusing: make(map[net.Conn]struct{}),
	}
}

// Accept returns the next connection under the limit, refusing those over
// it in the meantime.
func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// Adding before checking lets no more than max through, even
		// with concurrent Accepts.
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

// refuse answers c in a goroutine of its own, or closes it at once when
// maxRefusing are in progress or the listener is closed.
func (l *connLimitListener) refuse(c net.Conn) {
	if total, log := count(l.refused); log {
		l.logger.Warn("client connection limit reached: refusing new connections with 503",
			"limit", l.max, "refused_so_far", total, "remote", c.RemoteAddr().String())
	}
	l.mu.Lock()
	if l.closed || len(l.refusing) >= maxRefusing {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.refusing[c] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	go l.answer(c)
}

// answer reads the request's headers from c, writes the 503, reads on
// until the client closes, and closes c, all within refuseLinger.
//
// The headers come first because a client answered before it sent its
// request may take the answer for a stray one: Go's http.Transport drops
// it and fails the request. Reading on after the answer is for TCP: a
// close with unread data resets the connection, and the reset can reach
// the client before it has read the answer.
func (l *connLimitListener) answer(c net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.refusing, c)
		l.mu.Unlock()
		c.Close()
	}()
	if err := c.SetDeadline(time.Now().Add(refuseLinger)); err != nil {
		return
	}
	in := bufio.NewReader(io.LimitReader(c, l.maxRead))
	if _, err := http.ReadRequest(in); err != nil {
		return // not HTTP, too long, or too slow: no answer
	}
	if _, err := c.Write(l.response); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() // the client reads the answer, then EOF
	}
	_, _ = io.Copy(io.Discard, in) // until EOF, the deadline or the limit
}

// Close closes the listener and the connections being refused, and waits
// for the refusals to end. Connections already accepted are their
// server's to close.
func (l *connLimitListener) Close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.refusing {
		c.Close()
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// openConnections returns the number of accepted connections not yet
// closed.
func (l *connLimitListener) openConnections() int { return int(l.open.Load()) }

// limitedConn is an accepted connection; closing it frees its place.
type limitedConn struct {
	net.Conn
	l        *connLimitListener
	released atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.released.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return err
}

// CloseWrite half-closes the connection if it can (TCP does). net/http
// uses it to close without resetting the connection after an error
// answer; the wrapper must not hide it.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
