package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// FuzzFrameReader feeds arbitrary bytes to the Call frame decoder: it must never panic, never
// return a body over its limit, and stop at the first malformed frame.
func FuzzFrameReader(f *testing.F) {
	f.Add(encodeFrame(frameRequest, 1, make([]byte, requestFixed), []byte("hello")))
	f.Add(append(encodeFrame(frameReply, 7, []byte{replyOK}, []byte("x")), encodeFrame(framePing, 0, nil, nil)...))
	f.Add(encodeFrame(frameGoAway, 3, nil, nil))
	f.Add([]byte{0, 0, 0, 3, 1})          // length shorter than the header
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}) // length over the limit
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer server.Close()
		go func() {
			_, _ = client.Write(data)
			client.Close()
		}()
		tr := &TCPTransport{ctx: context.Background()}
		c := &trackedConn{Conn: server, raw: server, t: tr}
		const maxBody = 1 << 10
		fr := frameReader{conn: c, r: bufio.NewReader(c), maxBody: maxBody, timeout: time.Second}
		read := 0
		for {
			typ, _, body, err := fr.read()
			if err != nil {
				return
			}
			if len(body) > maxBody {
				t.Fatalf("frame type %d with a %d-byte body, limit %d", typ, len(body), maxBody)
			}
			read += frameHeaderLen + len(body)
			if read > len(data) {
				t.Fatalf("decoded %d bytes from %d", read, len(data))
			}
		}
	})
}

// A frame's length field counts what follows it.
func TestEncodeFrame(t *testing.T) {
	f := encodeFrame(frameReply, 42, []byte{replyOK}, []byte("abc"))
	if n := binary.BigEndian.Uint32(f); int(n) != len(f)-4 || f[4] != frameReply || binary.BigEndian.Uint64(f[5:]) != 42 {
		t.Fatalf("frame %x", f)
	}
}
