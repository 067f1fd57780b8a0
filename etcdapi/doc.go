// Package etcdapi serves etcd's v3 gRPC API (etcdserverpb) from a
// kvstore node, so that etcdctl, go.etcd.io/etcd/client/v3 and anything
// built on them talk to a kvstore cluster as they would to etcd.
//
// # Basics
//
// A program that embeds a node serves the API on a listener of its own:
//
//	srv := etcdapi.NewServer(node)
//	go srv.Serve(listener) // returns ErrServerClosed after Close
//	...
//	srv.Close() // then node.Close()
//
// or registers it on a gRPC server it owns, beside other services:
//
//	gs := grpc.NewServer(etcdapi.ServerOptions()...)
//	srv.Register(gs)
//	go gs.Serve(listener)
//	...
//	gs.Stop()
//	srv.Close()
//
// The services are KV (Range with every option, Put, DeleteRange, Txn with
// nested txns, Compact), Watch (many watches per stream, start revisions,
// filters, prev-kv, progress notifications and RequestProgress,
// fragmentation), Lease (Grant, Revoke, the KeepAlive stream, TimeToLive,
// Leases), Cluster (MemberList, MemberAdd, MemberUpdate, MemberRemove,
// MemberPromote), Maintenance (Status, Alarm, Hash, HashKV, Snapshot,
// MoveLeader, Defragment) and Auth. Each answers with
// etcd's semantics, which the node already implements, and fails with the
// gRPC status codes and messages of etcd's rpctypes, so that clientv3
// returns its own typed errors (rpctypes.ErrCompacted and the others).
// Maintenance.Downgrade answers codes.Unimplemented. gRPC's health service reports SERVING until
// [Server.Close].
//
// # IDs
//
// etcd names members and clusters with uint64 IDs; kvstore with strings.
// A member whose kvstore ID is etcd-style, 16 lowercase hex digits (as
// [PeerMemberID] derives from its peer URL, and MemberAdd and the
// kvstore-etcd server use), has that value as its etcd ID; any other
// member's etcd ID is the 64-bit FNV-1a hash of its kvstore ID. The
// cluster's is the hash of its cluster token (see [MemberID]), so every
// member derives the same IDs with no coordination and they stay the same
// across restarts. A hash of 0, which etcd reserves for "none", is
// replaced by 1.
//
// # Caveats
//
// Every member serves the API: reads and watches from its own state (a
// linearizable read asks the leader for a read index first), writes
// forwarded to the leader. A request the node answers with
// kvstore.ErrOutcomeUnknown is answered as etcd answers a request whose
// proposal timed out (rpctypes.ErrGRPCTimeout): the write may have
// committed.
package etcdapi
