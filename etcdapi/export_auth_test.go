package etcdapi

import (
	"maps"
	"slices"
)

// AdminMethods returns, for the tests, the full gRPC names of the calls
// that need the root role while auth is enabled, in order.
func AdminMethods() []string {
	return slices.Sorted(maps.Keys(adminMethods))
}
