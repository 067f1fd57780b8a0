package etcdapi

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// gogoMessage is what the gogoproto-generated code of etcd's API module
// (etcdserverpb, mvccpb, authpb) gives every message: its own wire
// encoding, without reflection.
type gogoMessage interface {
	Reset()
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
	Unmarshal([]byte) error
}

// codec is the server's gRPC codec ([ServerOptions]). grpc's default proto
// codec reaches a gogoproto message through protobuf-go's legacy adapter,
// which wraps the message on every call, sizes it by marshaling it (the
// adapter knows no Size method), marshals it again into gRPC's buffer, and
// runs the whole way on a deep stack that a fresh handler goroutine grows
// by copying. codec calls the generated methods instead: Size once, then
// MarshalToSizedBuffer into a buffer of that size, pooled as grpc's codec
// pools it, and Unmarshal straight from the received bytes. The bytes are
// those the legacy adapter produces, which calls the same generated code,
// so clients see no difference. A message without the generated methods
// (gRPC's health service, which is protobuf-go's own) goes to the proto
// codec it replaces.
//
// codec is stateless and safe for concurrent use, as gRPC requires.
type codec struct {
	fallback encoding.CodecV2
}

// newCodec returns the codec, falling back to grpc's registered proto
// codec.
func newCodec() codec {
	return codec{fallback: encoding.GetCodecV2(grpcproto.Name)}
}

// Marshal encodes v. The buffer it returns is pooled above gRPC's pooling
// threshold; gRPC frees it once written.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(gogoMessage)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.Size()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if err := marshalSized(m, buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if err := marshalSized(m, (*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// marshalSized encodes m into buf, which is m.Size() long, as the
// generated MarshalToSizedBuffer wants it (it fills buf from the end).
func marshalSized(m gogoMessage, buf []byte) error {
	n, err := m.MarshalToSizedBuffer(buf)
	if err != nil {
		return err
	}
	if n != len(buf) {
		// The message changed between Size and the encoding: gRPC's
		// contract that a message is not mutated while sent was broken.
		return fmt.Errorf("etcdapi: %T encoded to %d bytes, sized %d", m, n, len(buf))
	}
	return nil
}

// Unmarshal decodes data into v, replacing what v held, as proto.Unmarshal
// does. The generated Unmarshal copies every bytes and string field, so v
// keeps no reference to data, whose buffers gRPC reuses.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(gogoMessage)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	m.Reset()
	return m.Unmarshal(buf.ReadOnlyData())
}

// Name is the proto codec's, "proto": the content subtype clients send
// and expect back.
func (codec) Name() string { return grpcproto.Name }
