package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// The Call protocol, on connections whose preamble said kindCall. Both directions carry frames:
//
//	uint32 length of what follows (big endian)
//	byte   frame type
//	uint64 request ID (chosen by the caller, unique per connection)
//	body:  request: int64 remaining time in ns (0: no deadline), then the request bytes
//	       reply:   byte status, then the reply bytes (or an error text for replyTooLarge)
//	       cancel, ping, pong, goaway: empty
//
// The caller sends requests and cancels, the server replies, in any order: many Calls are in
// flight on one connection. The deadline travels as a duration, not a time, because the two
// machines' clocks need not agree. The caller pings a connection on which nothing arrived for a
// while and gives the connection up when the pong does not follow: TCP's own keep-alive is
// suspended while a request is unacknowledged, so it would not notice a peer that vanished
// with Calls pending. A frame longer than the message size limit (plus the fixed
// fields) is a protocol violation and ends the connection.
//
// A server whose transport closes first sends goaway, on every Call connection it serves,
// carrying the ID of the last request it accepted (0: none), and handles no request after it;
// then it closes the connection. The caller knows that every request of its own with a higher
// ID never reached a handler, and fails those Calls with ErrNotDelivered (HTTP/2's GOAWAY,
// with "last stream ID"). A caller that predates goaway treats it as a frame it does not
// know: a protocol violation, which ends the connection as the close right behind it would
// have, with the same errors as before. Request IDs on a connection increase, so "higher" is
// "sent later".

const (
	frameRequest byte = 1
	frameReply   byte = 2
	frameCancel  byte = 3
	framePing    byte = 4
	framePong    byte = 5
	frameGoAway  byte = 6 // server to caller; the ID is the last request accepted

	replyOK        byte = 0
	replyNoHandler byte = 1
	replyTooLarge  byte = 2

	frameHeaderLen = 4 + 1 + 8
	requestFixed   = 8 // remaining time
	replyFixed     = 1 // status
	// maxFrameBody bounds WithMaxMessageSize so that a frame length fits in a uint32.
	maxFrameBody = 1<<32 - 1 - 1 - 8 - requestFixed
)

// callConnsPerPeer is how many connections Calls to one peer are spread over. Calls are
// pipelined on each, and the writer batches what queued up meanwhile, so one connection makes
// the largest batches: measured on loopback with 64 callers (2 cores), 1 connection gave
// 2.3 µs per Call, 2 gave 3.7 µs, 4 gave 3.6 µs. The price is head-of-line blocking behind a
// large message (a 1.5 MiB write is about 12 ms at 1 Gbit/s); raft's traffic has its own
// connections and is not affected.
const callConnsPerPeer = 1

// frameWriter sends the frames queued on one connection from a goroutine of its own, writing
// everything queued since its last write with one flush: concurrent Calls share syscalls (and
// TLS records) instead of taking turns. Queueing never blocks.
type frameWriter struct {
	conn    *trackedConn
	timeout time.Duration
	mu      sync.Mutex
	queue   [][]byte
	flushed []chan struct{} // closed once the frames queued before them are written
	wake    chan struct{}   // one slot: "the queue is not empty"
	stopped chan struct{}   // closed when run returns
}

func newFrameWriter(c *trackedConn, timeout time.Duration) *frameWriter {
	return &frameWriter{conn: c, timeout: timeout, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// send queues an encoded frame.
func (w *frameWriter) send(frame []byte) {
	w.mu.Lock()
	w.queue = append(w.queue, frame)
	w.mu.Unlock()
	w.signal()
}

func (w *frameWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// sendAndWait queues an encoded frame and waits until it and every frame queued before it are
// written to the connection, the writer stops (a write failed or the connection is done with),
// or wait has passed. It reports whether the frame was written.
func (w *frameWriter) sendAndWait(frame []byte, wait time.Duration) bool {
	written := make(chan struct{})
	w.mu.Lock()
	w.queue = append(w.queue, frame)
	w.flushed = append(w.flushed, written)
	w.mu.Unlock()
	w.signal()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-written:
		return true
	case <-w.stopped:
		select {
		case <-written:
			return true
		default:
			return false
		}
	case <-timer.C:
		return false
	}
}

// run writes queued frames until done is closed or a write fails (a batch must be written
// within scaledTimeout), and returns the write error, if any.
func (w *frameWriter) run(done <-chan struct{}) error {
	defer close(w.stopped)
	bw := bufio.NewWriterSize(w.conn, 64<<10)
	var batch [][]byte
	var flushed []chan struct{}
	for {
		select {
		case <-w.wake:
		case <-done:
			return nil
		}
		// Let the goroutines that are ready to queue a frame do so first: under load this turns
		// many small writes into one (BenchmarkTCPCall, 64 callers: ~11 µs per Call without, ~2 µs
		// with; DESIGN.md).
		runtime.Gosched()
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		flushed, w.flushed = w.flushed, flushed[:0]
		w.mu.Unlock()
		size := 0
		for _, f := range batch {
			size += len(f)
		}
		_ = w.conn.raw.SetWriteDeadline(time.Now().Add(scaledTimeout(w.timeout, size)))
		for i, f := range batch {
			if _, err := bw.Write(f); err != nil {
				return err
			}
			batch[i] = nil
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		for i, ch := range flushed {
			close(ch)
			flushed[i] = nil
		}
	}
}

// scaledTimeout is the time allowed to move size bytes: the RPC timeout per started 256 KiB,
// raft's rule for snapshots (at the default 1 s, a floor of 256 KiB/s).
func scaledTimeout(timeout time.Duration, size int) time.Duration {
	return timeout * time.Duration(1+size/(256<<10))
}

// encodeFrame builds a frame whose body is fixed followed by payload. The payload is copied:
// the caller may reuse it.
func encodeFrame(typ byte, id uint64, fixed []byte, payload []byte) []byte {
	n := frameHeaderLen + len(fixed) + len(payload)
	f := make([]byte, n)
	binary.BigEndian.PutUint32(f, uint32(n-4))
	f[4] = typ
	binary.BigEndian.PutUint64(f[5:], id)
	copy(f[frameHeaderLen:], fixed)
	copy(f[frameHeaderLen+len(fixed):], payload)
	return f
}

// frameReader reads frames from one connection.
type frameReader struct {
	conn    *trackedConn
	r       *bufio.Reader
	maxBody int
	timeout time.Duration // for the rest of a frame once its header arrived (scaledTimeout)
}

// errFrameTooLarge and errBadFrame are protocol violations; they end the connection.
var (
	errFrameTooLarge = errors.New("frame over the message size limit")
	errBadFrame      = errors.New("malformed frame")
)

// read returns the next frame. It waits for a header without a deadline (an idle connection is
// fine; keep-alive probes notice a vanished peer); the body must follow within the timeout.
func (fr *frameReader) read() (typ byte, id uint64, body []byte, err error) {
	return fr.readWithin(0)
}

// errIdle is what readWithin reports when no frame started in time; the connection stays
// usable.
var errIdle = errors.New("no frame")

// readWithin is read, but if wait is positive and no frame starts within it, it fails with
// errIdle.
func (fr *frameReader) readWithin(wait time.Duration) (typ byte, id uint64, body []byte, err error) {
	if wait > 0 && fr.r.Buffered() == 0 {
		_ = fr.conn.raw.SetReadDeadline(time.Now().Add(wait))
		_, err := fr.r.Peek(1) // consumes nothing: a timeout leaves no half-read header
		_ = fr.conn.raw.SetReadDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, 0, nil, errIdle
		}
		if err != nil {
			return 0, 0, nil, err
		}
	}
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	length := int64(binary.BigEndian.Uint32(h[:4]))
	typ, id = h[4], binary.BigEndian.Uint64(h[5:])
	n := length - (frameHeaderLen - 4)
	if n < 0 {
		return 0, 0, nil, errBadFrame
	}
	if n > int64(fr.maxBody) {
		return 0, 0, nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	body = make([]byte, n)
	if fr.r.Buffered() < len(body) {
		_ = fr.conn.raw.SetReadDeadline(time.Now().Add(scaledTimeout(fr.timeout, int(n))))
		defer func() { _ = fr.conn.raw.SetReadDeadline(time.Time{}) }()
	}
	if _, err := io.ReadFull(fr.r, body); err != nil {
		return 0, 0, nil, err
	}
	return typ, id, body, nil
}

// Call sends request to the transport at target and waits for its reply. See [Transport.Call]
// for the errors; a request over the message size limit fails with [ErrTooLarge]. The handler's
// context carries ctx's deadline (as the time remaining when the request left) and is
// cancelled when ctx ends, when the connection breaks or when either transport closes. With
// [WithPeerIDCheck], a non-empty id must be named by target's certificate.
func (t *TCPTransport) Call(ctx context.Context, id raft.ServerID, target raft.ServerAddress, request []byte) ([]byte, error) {
	if t.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if err := expired(ctx); err != nil {
		return nil, notDelivered(fmt.Errorf("transport: call to %s: %w", target, err))
	}
	if len(request) > t.cfg.maxMessageSize {
		return nil, notDelivered(fmt.Errorf("%w: call to %s: request of %d bytes, limit %d", ErrTooLarge, target, len(request), t.cfg.maxMessageSize))
	}
	c, err := t.calls.conn(ctx, t, id, target)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, notDelivered(err) // no connection: nothing was written
	}
	var remaining int64 // measured as late as possible: a dial may have taken a while
	if dl, ok := ctx.Deadline(); ok {
		remaining = max(1, int64(time.Until(dl)))
	}
	var fixed [requestFixed]byte
	binary.BigEndian.PutUint64(fixed[:], uint64(remaining))
	replyCh := make(chan callResult, 1)
	reqID, err := c.send(encodeFrame(frameRequest, 0, fixed[:], request), replyCh)
	if err != nil {
		// The connection broke, or the server said goaway, before the request was queued.
		return nil, notDelivered(err)
	}

	select {
	case r := <-replyCh:
		if err := expired(ctx); err != nil && r.err == nil {
			// The reply came as the deadline passed (the handler's context, which expires at
			// the same time, may have made it): report the deadline, so the outcome does not
			// depend on scheduling.
			c.forget(reqID)
			return nil, fmt.Errorf("transport: call to %s: %w", target, err)
		}
		return r.reply, r.err
	case <-ctx.Done():
		// At the caller's deadline the handler's own copy of it expires too: a cancel is only
		// worth sending when the caller cancelled.
		if c.forget(reqID) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.w.send(encodeFrame(frameCancel, reqID, nil, nil))
		}
		return nil, fmt.Errorf("transport: call to %s: %w", target, ctx.Err())
	case <-t.ctx.Done():
		return nil, fmt.Errorf("%w: call to %s interrupted", ErrClosed, target)
	}
}

// pingAfter is how long a caller's connection may stay silent before it is pinged: twice the
// RPC timeout (the pong must then come within one RPC timeout).
func pingAfter(rpcTimeout time.Duration) time.Duration { return 2 * rpcTimeout }

// callPool holds the Call connections of a transport, callConnsPerPeer per (peer ID, address).
type callPool struct {
	mu    sync.Mutex
	peers map[callKey]*callSlots
}

type callKey struct {
	id   raft.ServerID
	addr raft.ServerAddress
}

type callSlots struct {
	next  atomic.Uint32
	slots [callConnsPerPeer]callSlot
}

// callSlot is one pooled connection, or the dial that is making it.
type callSlot struct {
	mu      sync.Mutex
	conn    *callConn // nil or broken: dial again
	dialing *dialResult
}

// dialResult is the outcome of one dial, shared by every Call that waited for it.
type dialResult struct {
	done chan struct{}
	conn *callConn
	err  error
}

// conn returns a live connection to (id, addr), dialling one if needed. The dial runs on a
// goroutine of the transport, bounded by the dial and handshake timeouts, so that a caller that
// gives up does not fail the dial for the others waiting on it.
func (p *callPool) conn(ctx context.Context, t *TCPTransport, id raft.ServerID, addr raft.ServerAddress) (*callConn, error) {
	key := callKey{id, addr}
	p.mu.Lock()
	if p.peers == nil {
		p.peers = make(map[callKey]*callSlots)
	}
	s := p.peers[key]
	if s == nil {
		s = &callSlots{}
		p.peers[key] = s
	}
	p.mu.Unlock()
	slot := &s.slots[s.next.Add(1)%callConnsPerPeer]

	slot.mu.Lock()
	if c := slot.conn; c != nil && !c.broken() {
		slot.mu.Unlock()
		return c, nil
	}
	d := slot.dialing
	if d == nil {
		d = &dialResult{done: make(chan struct{})}
		started := t.spawn(func() {
			d.conn, d.err = t.dialCall(id, addr)
			slot.mu.Lock()
			slot.conn, slot.dialing = d.conn, nil
			slot.mu.Unlock()
			close(d.done)
		})
		if !started {
			slot.mu.Unlock()
			return nil, ErrClosed
		}
		slot.dialing = d
	}
	slot.mu.Unlock()

	select {
	case <-d.done:
		return d.conn, d.err
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: call to %s: %w", addr, ctx.Err())
	case <-t.ctx.Done():
		return nil, fmt.Errorf("%w: call to %s interrupted", ErrClosed, addr)
	}
}

// callConn is the caller's side of one Call connection.
type callConn struct {
	t    *TCPTransport
	conn *trackedConn
	addr raft.ServerAddress
	w    *frameWriter

	mu      sync.Mutex // guards the fields below; taken before w's
	nextID  uint64
	pending map[uint64]chan<- callResult
	// retired is set when no request may be queued any more, though replies may still come:
	// the server said goaway (the Calls above its last accepted ID got this error, the
	// connection is failed once the others are answered), or the peer reset the connection
	// under a write (the reader fails it at the end of what arrived). It matches
	// ErrNotDelivered.
	retired error
	err     error // set once the connection broke; every pending Call got it
}

// dialCall dials a Call connection and starts its reader and writer.
func (t *TCPTransport) dialCall(id raft.ServerID, addr raft.ServerAddress) (*callConn, error) {
	tc, err := t.dial(id, addr, kindCall)
	if err != nil {
		return nil, err
	}
	c := &callConn{t: t, conn: tc, addr: addr, w: newFrameWriter(tc, t.cfg.rpcTimeout), pending: make(map[uint64]chan<- callResult)}
	done := make(chan struct{})
	readerStarted := t.spawn(func() {
		defer close(done)
		c.readReplies()
	})
	if !readerStarted || !t.spawn(func() {
		if err := c.w.run(done); err != nil {
			c.writeFailed(unreachableErr(addr, fmt.Errorf("connection lost: %w", err)))
		}
	}) {
		_ = tc.Close()
		return nil, fmt.Errorf("%w: dialling %s", ErrClosed, addr)
	}
	return c, nil
}

// readReplies delivers replies to their Calls until the connection breaks, then fails the
// Calls still pending.
func (c *callConn) readReplies() {
	fr := frameReader{conn: c.conn, r: bufio.NewReaderSize(c.conn, 64<<10), maxBody: c.t.cfg.maxMessageSize + replyFixed, timeout: c.t.cfg.rpcTimeout}
	awaitingPong := false
	for {
		if h := c.t.hooks.beforeCallReply; h != nil {
			h()
		}
		wait := pingAfter(c.t.cfg.rpcTimeout)
		if awaitingPong {
			wait = c.t.cfg.rpcTimeout
		}
		typ, id, body, err := fr.readWithin(wait)
		if err == errIdle && !awaitingPong {
			c.w.send(encodeFrame(framePing, 0, nil, nil))
			awaitingPong = true
			continue
		}
		if err == nil && typ == framePong {
			awaitingPong = false
			continue
		}
		if err == nil && typ == frameGoAway {
			if c.goAway(id) {
				// Nothing is left to wait for: close the connection now.
				c.fail(notDelivered(unreachable(c.addr, "the peer closed the connection")))
				return
			}
			awaitingPong = false
			continue
		}
		if err == nil && (typ != frameReply || len(body) < replyFixed) {
			err = fmt.Errorf("%w: type %d from the server", errBadFrame, typ)
		}
		if err == errIdle {
			err = fmt.Errorf("no answer to a ping within %v", c.t.cfg.rpcTimeout)
		}
		if err != nil {
			if c.t.ctx.Err() == nil && !errors.Is(err, io.EOF) {
				c.t.logger.Warn("transport: call connection broken", "peer", string(c.addr), "error", err)
			}
			c.fail(unreachableErr(c.addr, fmt.Errorf("connection lost: %w", err)))
			return
		}
		awaitingPong = false // any frame shows the peer is alive
		c.mu.Lock()
		ch, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !ok {
			continue // the caller gave up
		}
		var r callResult
		switch payload := body[replyFixed:]; body[0] {
		case replyOK:
			r.reply = payload
		case replyNoHandler:
			r.err = notDelivered(fmt.Errorf("%w: %s", ErrNoHandler, c.addr))
		case replyTooLarge:
			r.err = fmt.Errorf("%w: reply from %s: %s", ErrTooLarge, c.addr, payload)
		default:
			r.err = fmt.Errorf("transport: call to %s: unknown reply status %d", c.addr, body[0])
		}
		ch <- r
	}
}

// send allots a request ID to a Call whose reply goes to ch, writes it into frame (a request
// frame encoded with ID 0) and queues the frame, all under c.mu: a request is never queued on a
// connection already known to be broken or going away, and one that was queued is pending
// until it is answered or failed. The error is the connection's.
func (c *callConn) send(frame []byte, ch chan<- callResult) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.retired != nil {
		return 0, c.retired
	}
	c.nextID++
	binary.BigEndian.PutUint64(frame[5:], c.nextID)
	c.pending[c.nextID] = ch
	c.w.send(frame)
	return c.nextID, nil
}

// goAway handles the server's goaway with the last request ID it accepted: the connection
// takes no more requests, and the Calls above last fail with ErrNotDelivered, the server having
// promised not to handle them. The others keep waiting for their replies. It reports whether
// none is left waiting.
func (c *callConn) goAway(last uint64) (drained bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return true
	}
	err := notDelivered(unreachable(c.addr, "the peer is closing: it stopped taking requests on this connection"))
	if c.retired == nil {
		c.retired = err
	}
	var unsent []chan<- callResult
	for id, ch := range c.pending {
		if id > last {
			unsent = append(unsent, ch)
			delete(c.pending, id)
		}
	}
	drained = len(c.pending) == 0
	c.mu.Unlock()
	for _, ch := range unsent {
		ch <- callResult{err: err}
	}
	return drained
}

// forget drops a pending Call whose caller gave up; it reports whether the Call was still
// pending (so that a cancel is worth sending).
func (c *callConn) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok && c.err == nil
}

// broken reports whether the connection takes no more requests.
func (c *callConn) broken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil || c.retired != nil
}

// writeFailed handles the failure of a write on the connection. The connection takes no more
// requests. When the peer reset or closed it (ECONNRESET, EPIPE), the peer is done with the
// connection and what it sent before, a goaway perhaps, is in our receive buffer: the reader
// reads it, then fails at the end of the data, soon. Otherwise (a write deadline) the
// connection is failed now.
func (c *callConn) writeFailed(err error) {
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		c.fail(err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retired == nil {
		c.retired = notDelivered(err)
	}
}

// fail marks the connection broken, closes it and fails every pending Call with err (ErrClosed
// instead when the transport is closing).
func (c *callConn) fail(err error) {
	if c.t.ctx.Err() != nil {
		err = fmt.Errorf("%w: call to %s interrupted", ErrClosed, c.addr)
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	_ = c.conn.Close()
	for _, ch := range pending {
		ch <- callResult{err: err}
	}
}

// serveCalls is the server's side of a Call connection: it reads requests and cancels, runs a
// handler goroutine per request and queues the replies, until the connection breaks or the
// transport closes. Then every handler it started sees its context cancelled.
func (t *TCPTransport) serveCalls(c *trackedConn) {
	connCtx, cancelConn := context.WithCancel(t.ctx)
	defer cancelConn()
	defer c.Close()
	w := newFrameWriter(c, t.cfg.rpcTimeout)
	server := &callServer{w: w}
	if !t.addCallServer(server) {
		// Close began as we started, and did not see this connection: no request was
		// accepted. Nothing else writes to it yet.
		writeGoAwayNow(c, t.cfg.rpcTimeout)
		return
	}
	defer t.removeCallServer(server)
	done := make(chan struct{})
	defer close(done)
	if !t.spawn(func() {
		if err := w.run(done); err != nil {
			_ = c.Close() // the reader below fails and cancels the handlers
		}
	}) {
		// Close began after addCallServer: it sends goaway through w, which runs here until
		// Close cancels t.ctx.
		_ = w.run(t.ctx.Done())
		return
	}

	var mu sync.Mutex
	running := make(map[uint64]context.CancelFunc) // handlers by request ID, for cancels
	fr := frameReader{conn: c, r: bufio.NewReaderSize(c, 64<<10), maxBody: t.cfg.maxMessageSize + requestFixed, timeout: t.cfg.rpcTimeout}
	for {
		typ, id, body, err := fr.read()
		if err != nil {
			if t.ctx.Err() == nil && !errors.Is(err, io.EOF) {
				t.logger.Warn("transport: call connection broken", "remote", c.raw.RemoteAddr().String(), "error", err)
			}
			return
		}
		switch typ {
		case framePing:
			w.send(encodeFrame(framePong, id, nil, nil))
		case frameCancel:
			mu.Lock()
			cancel := running[id]
			mu.Unlock()
			if cancel != nil {
				cancel()
			}
		case frameRequest:
			if len(body) < requestFixed {
				t.logger.Warn("transport: short call request", "remote", c.raw.RemoteAddr().String())
				return
			}
			h := t.handler.Load()
			if h == nil {
				w.send(encodeFrame(frameReply, id, []byte{replyNoHandler}, nil))
				continue
			}
			hctx, cancel := connCtx, context.CancelFunc(nil)
			if remaining := int64(binary.BigEndian.Uint64(body)); remaining > 0 {
				hctx, cancel = context.WithTimeout(connCtx, time.Duration(remaining))
			} else {
				hctx, cancel = context.WithCancel(connCtx)
			}
			mu.Lock()
			running[id] = cancel
			mu.Unlock()
			request := body[requestFixed:]
			accepted := server.accept(id, func() bool {
				return t.spawn(func() {
					defer cancel()
					reply := (*h)(hctx, request)
					mu.Lock()
					delete(running, id)
					mu.Unlock()
					if t.ctx.Err() != nil {
						// Close cancelled the handler: its caller gets ErrUnreachable from the
						// closed connection, not whatever the handler made of the cancellation.
						return
					}
					if len(reply) > t.cfg.maxMessageSize {
						msg := fmt.Sprintf("%d bytes, limit %d", len(reply), t.cfg.maxMessageSize)
						w.send(encodeFrame(frameReply, id, []byte{replyTooLarge}, []byte(msg)))
						return
					}
					w.send(encodeFrame(frameReply, id, []byte{replyOK}, reply))
				})
			})
			if !accepted {
				// The transport is closing: goaway tells the caller this request was not
				// handled, and Close closes the connection.
				mu.Lock()
				delete(running, id)
				mu.Unlock()
				cancel()
			}
		default:
			t.logger.Warn("transport: unexpected call frame", "type", typ, "remote", c.raw.RemoteAddr().String())
			return
		}
	}
}
