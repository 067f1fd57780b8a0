package etcdapi

import (
	"context"
	"maps"
	"slices"
)

// AdminMethods returns, for the tests, the full gRPC names of the calls
// that need the root role while auth is enabled, in order.
func AdminMethods() []string {
	return slices.Sorted(maps.Keys(adminMethods))
}

// Authorize runs s's auth check of one unary call, as Register's services
// run it before serving the call with the context it returns.
func Authorize(s *Server, ctx context.Context, method string, req any) (context.Context, error) {
	return s.authorize(ctx, method, req)
}
