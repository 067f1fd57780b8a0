// Package kvstore is an embeddable, replicated, strongly consistent
// key-value store with etcd v3's data model, replicated by Raft.
//
// # Basics
//
// [Open] starts a node that is a member of a raft group; its peers may
// live in the same process (tests, demos) or on other machines. A node
// needs an ID unique in its cluster ([WithID]), a [transport.Transport]
// to reach its peers ([WithTransport]), and, to found a new cluster, the
// founding members ([WithBootstrap]). Package transport provides two.
// [transport.NewNetwork] makes an in-memory network for nodes in one
// process; each node joins it with [transport.Network.Join]
// under an address of its choosing, any name unique on that network:
//
//	network := transport.NewNetwork()
//	peers := []kvstore.Peer{{ID: "n1", Address: "n1"}, {ID: "n2", Address: "n2"}, {ID: "n3", Address: "n3"}}
//	for _, p := range peers {
//		tr, err := network.Join(p.Address)
//		// ...
//		node, err := kvstore.Open(filepath.Join(dir, p.ID),
//			kvstore.WithID(p.ID), kvstore.WithTransport(tr), kvstore.WithBootstrap(peers...))
//		// ...
//	}
//
// [transport.NewTCP] listens on a host:port for nodes in separate
// processes, with mutual TLS 1.3 through [transport.WithTLS]; a member's
// [Peer] Address is then the host:port its transport advertises:
//
//	tr, err := transport.NewTCP("10.0.0.1:2380", transport.WithTLS(tlsConfig),
//		transport.WithLocalID("n1"), transport.WithPeerIDCheck())
//
// The node owns its transport once Open succeeds and closes it in
// [Node.Close]. The package example runs a 3-node cluster in one process
// and reads a write back through another member; Example (Tcp) is one
// member of a cluster of machines.
//
// Every member answers every call:
//
//   - [Node.Put], [Node.Delete], [Node.Txn] with writes, and [Node.Compact]
//     are committed through raft. A follower forwards them to the leader
//     and returns once it has applied them itself, so a caller reads its
//     own writes on the node it wrote through.
//   - [Node.Get] and read-only txns are linearizable by default (raft
//     read index: they see every write acknowledged before they began, on
//     any member); [WithSerializable] reads the node's local state with no
//     network round trip.
//   - Leases: [Node.Grant], [Node.KeepAlive], [Node.TimeToLive],
//     [Node.Revoke], [Node.Leases]; a key put [WithLease] goes when its
//     lease is revoked or expires. Only the leader keeps time, and it logs
//     remaining TTLs, so a leader change neither revives nor kills a lease.
//     A TTL below the cluster's minimum (etcd's: 1.5 election timeouts in
//     whole seconds, 2 s with the default timing) is raised to it, not
//     refused; [LeaseGrantResponse].TTL is the TTL granted.
//   - [Node.Watch] streams changes of a key or range from any member, from
//     now or from a past revision, with etcd's guarantees (ordered, unique,
//     reliable, atomic, resumable, bookmarkable); [Node.RequestProgress].
//   - Cluster management: [Node.Join] (a new node asks any member to add
//     it), [Node.Members], [Node.AddVoter],
//     [Node.AddLearner], [Node.PromoteLearner], [Node.RemoveMember] (the
//     removed member stops serving, see [Node.Removed]),
//     [Node.TransferLeadership], [Node.Status], and [Node.ObserveLeader]
//     for hosts that use the cluster as their own leader election.
//   - Operations: [WithMetrics] registers Prometheus metrics under etcd's
//     names on the host's registry (METRICS.md in the repository lists
//     them); [Node.Ready], [Node.ReadyChecks] and [Node.LiveChecks] back a
//     host's readiness and liveness probes; requests slower than
//     [WithSlowRequestThreshold] are logged. [WithQuotaBytes] bounds the
//     store's size (2 GiB by default, as etcd's): past it a NOSPACE alarm
//     makes every member refuse writes that add data with
//     [ErrDatabaseSpaceExceeded] until an operator compacts and calls
//     [Node.DisarmAlarm]; [Node.Alarms] lists the active alarms. The
//     corruption checks compare the members' [Node.HashKV] at start and,
//     on the leader, after each compaction ([WithCorruptCheckInterval]):
//     a member whose store disagrees with the majority's gets a CORRUPT
//     alarm and refuses reads and writes with [ErrCorrupt].
//     [Node.Backup] streams a consistent backup from any member,
//     [ReadBackupStatus] describes one and [Restore] prepares a data dir
//     from it for a new cluster (etcd's snapshot save, status, restore).
//   - Auth: [Node.Auth] manages etcd's users, roles and key-range
//     permissions, replicated through raft; it issues the tokens and
//     answers the permission checks that a server such as the etcdapi
//     module enforces.
//
// Responses carry a [Header] with the store revision, the raft term and
// the answering member, as etcd's do. Semantics follow etcd v3, rule by
// rule (SEMANTICS.md in the repository). The API has clientv3's shape,
// with the Node in place of the client; MIGRATING.md in the repository
// maps every clientv3 call, option, field and error to its counterpart
// here (resp.Kvs is [GetResponse].KVs, ev.Kv is [Event].KV, lease IDs are
// int64, rpctypes.ErrCompacted is [ErrCompacted], ...).
//
// In tests, package kvtest (github.com/kvstore/kvstore/kvtest) starts
// whole clusters in one process, in virtual time inside testing/synctest.
//
// # Caveats
//
//   - Every call that may wait for other members takes a context and
//     honours its deadline; a [Txn]'s is the one given to [Node.Txn], which
//     [Txn.Commit] uses. The methods without one read this node's own
//     state and never wait for other members: [Node.ID], [Node.Leader],
//     [Node.IsLeader], [Node.Status], [Node.HashKV] (which hashes the whole
//     store, so it takes time in proportion to its size) and
//     [Node.Removed]. [Open] and [Node.Close] take none either: they open
//     or stop this node's storage and goroutines, also without waiting for
//     other members.
//   - A write whose context ends after it was proposed may still commit;
//     so may one that fails with [ErrOutcomeUnknown]. Neither is retried
//     by kvstore. A write through a follower that could not be sent to a
//     leader (none elected, or the leader unreachable) is retried until its
//     context ends, waiting for the next leader; then it fails with
//     [ErrNoLeader] or [ErrLeaderUnreachable], and certainly did not
//     happen.
//   - Byte slices in responses alias the store's memory: do not modify them.
package kvstore
