// Package kvstore is an embeddable, replicated, strongly consistent
// key-value store with etcd v3's data model, replicated by Raft.
//
// This package is being built: today it holds the log command format, the
// raft state machine (fsm.go, snapshot.go), raft storage, options and the
// logging adapter that the replicated node will use; Open and the rest of the
// public API come next. The storage engine is in the mvcc
// subpackage, leases in lease, and the network in transport.
package kvstore
