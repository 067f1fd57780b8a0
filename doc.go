// Package kvstore is an embeddable, replicated, strongly consistent
// key-value store with etcd v3's data model, replicated by Raft.
//
// [Open] starts a node; [Node.Put], [Node.Get], [Node.Delete], [Node.Txn]
// and [Node.Compact] work today on the leader (linearizable reads by
// ReadIndex, serializable reads on any member). Forwarding from followers,
// Watch, Lease, membership and the test clusters of kvtest are being built;
// see DESIGN.md.
package kvstore
