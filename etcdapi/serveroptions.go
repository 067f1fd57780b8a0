package etcdapi

import "google.golang.org/grpc"

// DefaultStreamWorkers is the number of goroutines [ServerOptions] keeps
// to run gRPC's handlers on (grpc.NumStreamWorkers): about as many
// requests as one member has in its handlers at once under 64 clients
// spread over 3 members, each linearizable read waiting there for its
// read index. A request that finds every worker busy runs on a goroutine
// of its own, as without workers. More workers than requests in flight
// cost rather than save: each garbage collection shrinks the stack of a
// worker left idle, and the worker grows it again on its next request.
const DefaultStreamWorkers = 32

// ServerOptions returns the options to create the grpc.Server that a
// Server registers on with, for cheaper requests; the API is served
// alike without them. They are:
//
//   - a codec that encodes and decodes etcd's messages with their
//     generated gogoproto code rather than through protobuf-go's
//     reflection-based adapter for them (codec.go), with the same bytes
//     on the wire; other messages (gRPC's health service) go to gRPC's
//     proto codec as before;
//   - grpc.NumStreamWorkers(DefaultStreamWorkers): handlers run on
//     long-lived goroutines whose stacks have already grown to what a
//     request needs, instead of on a new goroutine per request, which
//     grows its stack by copying, once or more, every time.
//
// An option given to grpc.NewServer after these replaces the one of the
// same kind, for example grpc.NumStreamWorkers with another count. Each
// call returns new options; a codec holds no state.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(newCodec()),
		grpc.NumStreamWorkers(DefaultStreamWorkers),
	}
}
