// Package mvcc is kvstore's in-memory multi-version key-value store: etcd
// v3's data model without raft, time or the network.
//
// # Basics
//
// A [Store] starts at revision 1. Every write transaction that changes
// something — a [Store.Put], a [Store.DeleteRange] that deletes at least one
// key, a [Store.Txn] whose branch writes — takes the next revision, and each
// change inside it the next sub-revision. Every [KeyValue] carries
// CreateRevision, ModRevision, Version (1 on create, +1 per put, ended by a
// delete) and Lease. Reads ([Store.Range]) see the store at any revision from
// the compact revision to the current one.
//
// Writes return their [Event]s in the order they made them, which is what a
// watch hub needs; [Store.History] returns the events of a key range between
// two revisions at a cost proportional to the changes in that window.
//
// [Store.Compact] discards old history; [Store.Snapshot] takes an O(1)
// point-in-time view that serializes ([Snapshot.WriteTo]) to a versioned,
// checksummed format that [Store.Restore] reads back; [Store.Hash] compares
// replicas.
//
// The rules for every corner (empty ranges, limits and counts, compares on
// missing keys, duplicate keys in a txn, compaction at the edges) are etcd
// v3.7's, numbered in SEMANTICS.md at the repository root; where etcd has a
// bug the store does what that file says instead.
//
// # Determinism
//
// The same sequence of calls on two stores yields the same revisions,
// results, events, snapshots and hashes. Nothing in the store reads the
// clock or randomness. Physical compaction (reclaiming) runs in the
// background, paced by short sleeps between batches, but it only drops what
// reads, history, hashes and snapshots can no longer see, so it changes no
// result; only Size and Len follow its progress.
//
// # Caveats
//
// Byte slices in results (keys, values) alias the store's memory, which is
// never modified after it is written: they may be kept but must not be
// modified. Requests are not retained; their slices may be reused after the
// call returns.
package mvcc
