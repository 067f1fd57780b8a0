package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// rawRaftConn dials tr as a raft peer that states no ID and returns the connection, past the
// preamble, with its reader and a msgpack decoder of answers on it.
func rawRaftConn(t *testing.T, tr *TCPTransport) (net.Conn, *bufio.Reader, *codec.Decoder) {
	t.Helper()
	conn, err := net.Dial("tcp", string(tr.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append(append([]byte{}, preamble[:]...), kindRaft, 0)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if answer, err := r.ReadByte(); err != nil || answer != preambleOK {
		t.Fatalf("preamble answer %d, %v", answer, err)
	}
	return conn, r, codec.NewDecoder(r, &codec.MsgpackHandle{})
}

// When raft answers an InstallSnapshot before reading all of its data (it failed part way),
// the answer is written and the connection closed: the rest of the data must not be read as
// requests.
func TestTCPRaftSnapshotReadShortClosesAfterAnswer(t *testing.T) {
	tr := newTestTCP(t)
	conn, r, dec := rawRaftConn(t, tr)
	go func() {
		rpc := <-tr.Consumer()
		_, _ = io.CopyN(io.Discard, rpc.Reader, 9) // short of the request hidden in the data
		rpc.Respond(&raft.InstallSnapshotResponse{}, io.ErrShortWrite)
	}()
	// The data: raft reads the first 10 bytes; the rest is a well-formed request, which must
	// not be read as one.
	var data bytes.Buffer
	data.Write(make([]byte, 10))
	inner := &raft.TimeoutNowRequest{}
	if err := codec.NewEncoder(&data, &codec.MsgpackHandle{}).Encode(inner); err != nil {
		t.Fatal(err)
	}
	data.Bytes()[9] = rpcTimeoutNow // the type byte right before the request
	if err := sendRaw(conn, rpcInstallSnapshot, &raft.InstallSnapshotRequest{Term: 3, Size: int64(data.Len())}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(data.Bytes()); err != nil {
		t.Fatal(err)
	}
	if text, err := readAnswer(dec, &raft.InstallSnapshotResponse{}); err != nil || text != io.ErrShortWrite.Error() {
		t.Fatalf("answer %q, %v; want raft's error", text, err)
	}
	if n, err := r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes (%v) after the answer, want the connection closed", n, err)
	}
	select {
	case rpc := <-tr.Consumer():
		t.Fatalf("snapshot data reached the consumer as %T", rpc.Command)
	default:
	}
}

// sendRaw writes one request in NetworkTransport's format, in one write.
func sendRaw(conn net.Conn, kind uint8, req any) error {
	var buf bytes.Buffer
	buf.WriteByte(kind)
	if err := codec.NewEncoder(&buf, &codec.MsgpackHandle{BasicHandle: codec.BasicHandle{TimeNotBuiltin: true}}).Encode(req); err != nil {
		return err
	}
	_, err := conn.Write(buf.Bytes())
	return err
}

// readAnswer reads one answer in NetworkTransport's format: the error's text, then resp.
func readAnswer(dec *codec.Decoder, resp any) (text string, err error) {
	if err := dec.Decode(&text); err != nil {
		return "", err
	}
	return text, dec.Decode(resp)
}
