// Package kvstore is an embeddable, replicated, strongly consistent
// key-value store with etcd v3's data model, replicated by Raft.
//
// This package is being built: today it holds the log command format and
// the raft state machine (fsm.go, snapshot.go) that the replicated node will
// run; Open and the public API come next. The storage engine is in the mvcc
// subpackage, leases in lease, and the network in transport.
package kvstore
