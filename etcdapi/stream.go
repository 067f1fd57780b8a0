package etcdapi

import "context"

// receive runs recv (a gRPC stream's Recv) on a goroutine of its own and
// hands each request over on reqs, and the error that ends the stream on
// recvErr, so that a handler can select on them beside its context and end
// at once when Server.Close cancels it. Recv blocks until the client sends
// or the stream ends; the goroutine is not waited for: Recv returns only
// once the handler has returned and gRPC has ended the stream, and a
// request that arrives after ctx ended is dropped.
func receive[T any](ctx context.Context, recv func() (T, error)) (reqs <-chan T, recvErr <-chan error) {
	out := make(chan T)
	errc := make(chan error, 1)
	go func() {
		for {
			req, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case out <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}
