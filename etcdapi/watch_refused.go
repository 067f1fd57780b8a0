package etcdapi

import (
	"errors"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The reasons etcd gives for the watches it refuses to create; they are
// its mvcc errors' text, and clientv3 turns those rpctypes knows back into
// its typed errors (a negative start revision into rpctypes.ErrCompacted).
const (
	reasonEmptyRange  = "mvcc: watcher range is empty"
	reasonDuplicateID = "mvcc: duplicate watch ID provided on the WatchStream"
)

// errDuplicateWatchID is a create request naming a watch ID the stream
// already uses.
var errDuplicateWatchID = errors.New("etcdapi: duplicate watch ID")

// refusedWatchID is the watch ID of a refused watch's answer, etcd's
// (clientv3.InvalidWatchID).
const refusedWatchID = -1

// refusedWatch is etcd's answer to a watch it does not create: Created and
// Canceled at once, with watch ID -1 (refusedWatchID) and the
// reason as etcd words it. A negative start revision is refused as
// compacted (SEMANTICS.md rule 19), an empty range with etcd's mvcc text
// (rule 20); any other error of the node carries its etcd error's
// description.
func (s *Server) refusedWatch(err error) *pb.WatchResponse {
	var reason string
	switch {
	case errors.Is(err, kvstore.ErrNegativeWatchRevision):
		reason = rpctypes.ErrCompacted.Error()
	case errors.Is(err, kvstore.ErrInvalidWatchRange):
		reason = reasonEmptyRange
	case errors.Is(err, errDuplicateWatchID):
		reason = reasonDuplicateID
	default:
		reason = rpctypes.ErrorDesc(toGRPC(err))
	}
	return &pb.WatchResponse{Header: s.currentHeader(), WatchId: refusedWatchID, Created: true, Canceled: true, CancelReason: reason}
}
