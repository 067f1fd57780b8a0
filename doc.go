// Package kvstore is an embeddable, replicated, strongly consistent
// key-value store with etcd v3's data model, replicated by Raft.
//
// This package is being built: today it holds the log command format that
// the replicated node will write. The storage engine is in the mvcc
// subpackage, leases in lease, and the network in transport.
package kvstore
