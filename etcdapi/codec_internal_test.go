package etcdapi

import (
	"bytes"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// etcdMessages returns a new instance of every message etcd's API module
// registers (etcdserverpb, mvccpb, authpb): every request and response
// shape the codec encodes, and every message nested in one.
func etcdMessages(t *testing.T) []protoreflect.MessageType {
	t.Helper()
	var types []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		name := string(mt.Descriptor().FullName())
		for _, pkg := range []string{"etcdserverpb.", "mvccpb.", "authpb."} {
			if strings.HasPrefix(name, pkg) {
				types = append(types, mt)
			}
		}
		return true
	})
	if len(types) < 100 {
		t.Fatalf("found %d etcd message types, want etcdserverpb's, mvccpb's and authpb's (more than 100)", len(types))
	}
	return types
}

// populate sets every field of m, nested messages down to depth levels,
// with values that differ by field, variant and depth: negative numbers,
// the last value of each enum, two elements in each list and map. Of each
// oneof it sets the field variant selects.
func populate(m protoreflect.Message, variant, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && od.Fields().Get(variant%od.Fields().Len()) != fd {
			continue
		}
		seed := int(fd.Number())*7 + variant*3 + depth
		switch {
		case fd.IsList():
			if fd.Message() != nil && depth == 0 {
				continue
			}
			list := m.Mutable(fd).List()
			for j := range 2 {
				if fd.Message() != nil {
					e := list.NewElement()
					populate(e.Message(), variant+j, depth-1)
					list.Append(e)
				} else {
					list.Append(scalar(fd, seed+j))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := range 2 {
				k := scalar(fd.MapKey(), seed+j).MapKey()
				if fd.MapValue().Message() != nil {
					if depth == 0 {
						continue
					}
					v := mp.NewValue()
					populate(v.Message(), variant+j, depth-1)
					mp.Set(k, v)
				} else {
					mp.Set(k, scalar(fd.MapValue(), seed+j))
				}
			}
		case fd.Message() != nil:
			if depth > 0 {
				populate(m.Mutable(fd).Message(), variant, depth-1)
			}
		default:
			m.Set(fd, scalar(fd, seed))
		}
	}
}

// scalar is a nonzero value of fd's kind derived from seed.
func scalar(fd protoreflect.FieldDescriptor, seed int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		return protoreflect.ValueOfEnum(values.Get(values.Len() - 1).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(-int32(seed))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-int64(seed) << 40)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(seed) << 20)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(seed) << 50)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(seed) + 0.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(seed) + 0.25)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(strings.Repeat("s", seed%5+1) + "\u00e9")
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0, byte(seed), 0xff})
	}
	panic("no value for kind " + fd.Kind().String())
}

// split cuts data into a BufferSlice of pieces of at most n bytes, as
// gRPC hands over a message that arrived in several frames.
func split(data []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(data) > n {
		s = append(s, mem.SliceBuffer(bytes.Clone(data[:n])))
		data = data[n:]
	}
	return append(s, mem.SliceBuffer(bytes.Clone(data)))
}

// roundTrip checks the codec against gRPC's proto codec on msg (a
// populated message) and empty (a fresh one of its type): the same bytes,
// and decoding them, whole or in pieces, into empty gives msg back.
func roundTrip(t *testing.T, c codec, msg, empty any) {
	t.Helper()
	want, err := encoding.GetCodecV2(grpcproto.Name).Marshal(msg)
	if err != nil {
		t.Fatalf("%T: proto codec: %v", msg, err)
	}
	defer want.Free()
	got, err := c.Marshal(msg)
	if err != nil {
		t.Fatalf("%T: Marshal: %v", msg, err)
	}
	defer got.Free()
	if !bytes.Equal(got.Materialize(), want.Materialize()) {
		t.Fatalf("%T: Marshal gave\n%x\nthe proto codec\n%x", msg, got.Materialize(), want.Materialize())
	}
	for _, piece := range []int{got.Len() + 1, 7} {
		if err := c.Unmarshal(split(got.Materialize(), piece), empty); err != nil {
			t.Fatalf("%T: Unmarshal in pieces of %d: %v", msg, piece, err)
		}
		if !proto.Equal(messageV2(empty), messageV2(msg)) {
			t.Fatalf("%T: Unmarshal in pieces of %d gave %v, want %v", msg, piece, empty, msg)
		}
	}
}

func messageV2(m any) proto.Message {
	if v1, ok := m.(protoadapt.MessageV1); ok {
		return protoadapt.MessageV2Of(v1)
	}
	return m.(proto.Message)
}

// TestCodecEtcdMessages encodes every message of etcd's API, populated
// every way its oneofs allow, with the codec, and wants the bytes gRPC's
// proto codec gives and the message back from them.
func TestCodecEtcdMessages(t *testing.T) {
	c := newCodec()
	for _, mt := range etcdMessages(t) {
		oneofs := mt.Descriptor().Oneofs()
		variants := 1
		for i := range oneofs.Len() {
			variants = max(variants, oneofs.Get(i).Fields().Len())
		}
		for variant := range variants {
			m := mt.New()
			populate(m, variant, 3)
			msg := protoadapt.MessageV1Of(m.Interface())
			if _, ok := msg.(gogoMessage); !ok {
				t.Fatalf("%T has no generated Size, MarshalToSizedBuffer and Unmarshal: the codec would not encode it itself", msg)
			}
			roundTrip(t, c, msg, protoadapt.MessageV1Of(mt.New().Interface()))
		}
		// The zero message: no bytes at all.
		roundTrip(t, c, protoadapt.MessageV1Of(mt.New().Interface()), protoadapt.MessageV1Of(mt.New().Interface()))
	}
}

// TestCodecUnmarshalReplaces decodes into a message that already holds
// fields: as the proto codec, the result is the decoded message alone, no
// field or list element of the old one left.
func TestCodecUnmarshalReplaces(t *testing.T) {
	c := newCodec()
	msg := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}}}}}
	data, err := c.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	into := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("old")}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("old")}}}},
	}
	if err := c.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(messageV2(into), messageV2(msg)) {
		t.Errorf("Unmarshal into a used message gave %v, want %v", into, msg)
	}
}

// TestCodecLargeMessage encodes a response above gRPC's buffer pooling
// threshold (its buffer comes from gRPC's pool), and decodes it from a
// buffer that is overwritten afterwards, as gRPC reuses a received
// buffer: the decoded message owns its bytes.
func TestCodecLargeMessage(t *testing.T) {
	c := newCodec()
	value := bytes.Repeat([]byte("v"), 64<<10)
	msg := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 7}, Count: 1,
		Kvs: []*mvccpb.KeyValue{{Key: []byte("k"), Value: value, CreateRevision: 7, ModRevision: 7, Version: 1}}}
	roundTrip(t, c, msg, &pb.RangeResponse{})

	data, err := c.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	received := data.Materialize()
	data.Free()
	var got pb.RangeResponse
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(received)}, &got); err != nil {
		t.Fatal(err)
	}
	clear(received)
	if !bytes.Equal(got.Kvs[0].Key, []byte("k")) || !bytes.Equal(got.Kvs[0].Value, value) {
		t.Error("the decoded key or value changed when the received buffer was overwritten")
	}
}

// TestCodecFallback encodes gRPC's health messages, which are not
// gogoproto's, through the proto codec.
func TestCodecFallback(t *testing.T) {
	c := newCodec()
	if _, ok := any(&healthpb.HealthCheckResponse{}).(gogoMessage); ok {
		t.Fatal("the health service's messages have gogoproto's methods; this test tests nothing")
	}
	roundTrip(t, c, &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, &healthpb.HealthCheckResponse{})
	roundTrip(t, c, &healthpb.HealthCheckRequest{Service: "etcdserverpb.KV"}, &healthpb.HealthCheckRequest{})
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer{0xff}}, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("a malformed health request decoded")
	}
}

// TestCodecMalformed decodes bytes that are no message of the type:
// refused, as the proto codec refuses them.
func TestCodecMalformed(t *testing.T) {
	c := newCodec()
	proto := encoding.GetCodecV2(grpcproto.Name)
	for _, data := range [][]byte{{0x0a, 0x05, 'k'}, {0xff, 0xff, 0xff}, {0x0a}} {
		errCodec := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &pb.RangeRequest{})
		errProto := proto.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &pb.RangeRequest{})
		if errCodec == nil || errProto == nil {
			t.Errorf("%x: the codec returned %v, the proto codec %v; want both to refuse it", data, errCodec, errProto)
		}
	}
}
