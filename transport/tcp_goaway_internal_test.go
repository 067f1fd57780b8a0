package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestTCP(t *testing.T) *TCPTransport {
	t.Helper()
	tr, err := NewTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// A Call issued right after the peer closed, on the pooled connection the caller does not yet
// know is closed, is not delivered: the peer's goaway says it stopped before that request. The
// caller's reader is held until the Call is pending, so the request is certainly sent on the
// dead connection rather than on a fresh dial.
func TestTCPCallAfterPeerCloseOnPooledConnection(t *testing.T) {
	server := newTestTCP(t)
	var handled atomic.Int32
	server.SetHandler(func(_ context.Context, req []byte) []byte {
		handled.Add(1)
		return req
	})

	caller, err := NewTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseReader := func() { releaseOnce.Do(func() { close(release) }) }
	var reads atomic.Int32
	caller.hooks.beforeCallReply = func() {
		if reads.Add(1) == 2 { // after the first reply
			<-release
		}
	}
	t.Cleanup(func() {
		releaseReader()
		_ = caller.Close()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := caller.Call(ctx, "", server.LocalAddr(), []byte("first")); err != nil {
		t.Fatalf("first Call: %v", err)
	}
	caller.calls.mu.Lock()
	slot := &caller.calls.peers[callKey{"", server.LocalAddr()}].slots[0]
	caller.calls.mu.Unlock()
	slot.mu.Lock()
	conn := slot.conn
	slot.mu.Unlock()
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, 1)
	go func() {
		_, err := caller.Call(ctx, "", server.LocalAddr(), []byte("second"))
		errs <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn.mu.Lock()
		pending := len(conn.pending)
		conn.mu.Unlock()
		if pending == 1 {
			break
		}
		select {
		case err := <-errs:
			t.Fatalf("second Call returned %v before the caller's reader read anything", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the second Call never became pending on the pooled connection")
		}
		time.Sleep(time.Millisecond)
	}
	releaseReader()
	err = <-errs
	if !errors.Is(err, ErrNotDelivered) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Call after the peer closed: err = %v, want ErrNotDelivered with ErrUnreachable", err)
	}
	if got := handled.Load(); got != 1 {
		t.Fatalf("the handler ran %d times, want 1", got)
	}
	if !conn.broken() {
		t.Fatal("the connection is still pooled as usable after goaway")
	}
}

// On the wire: a closing server sends goaway with the ID of the last request it handed to a
// handler, here one whose handler is still running, then closes the connection.
func TestTCPGoAwayFrame(t *testing.T) {
	server := newTestTCP(t)
	running := make(chan struct{})
	server.SetHandler(func(ctx context.Context, _ []byte) []byte {
		close(running)
		<-ctx.Done()
		return nil
	})
	raw, err := net.Dial("tcp", string(server.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	hello := append(append([]byte{}, preamble[:]...), kindCall, 0)
	if _, err := raw.Write(hello); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(raw)
	if answer, err := r.ReadByte(); err != nil || answer != preambleOK {
		t.Fatalf("preamble answer %d, %v", answer, err)
	}
	const requestID = 7
	if _, err := raw.Write(encodeFrame(frameRequest, requestID, make([]byte, requestFixed), []byte("x"))); err != nil {
		t.Fatal(err)
	}
	<-running

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = server.Close()
	}()
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reading goaway: %v", err)
	}
	if length, typ, id := binary.BigEndian.Uint32(h[:]), h[4], binary.BigEndian.Uint64(h[5:]); length != frameHeaderLen-4 || typ != frameGoAway || id != requestID {
		t.Fatalf("frame length %d, type %d, ID %d; want %d, goaway (%d), %d", length, typ, id, frameHeaderLen-4, frameGoAway, requestID)
	}
	if n, err := r.Read(h[:]); err == nil {
		t.Fatalf("read %d more bytes after goaway, want the connection closed", n)
	}
	<-closed
}
