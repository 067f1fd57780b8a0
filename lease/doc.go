// Package lease keeps the lease state of kvstore: etcd v3 leases replicated
// through raft, with expiry decided by the leader.
//
// The package has two halves with different guarantees.
//
// Table is the replicated state, applied by the state machine on every node:
// which leases exist (ID, granted TTL, last checkpointed remaining TTL) and
// which keys are attached to each. It is deterministic — it never reads a
// clock, draws random numbers or lets map order escape — so replicas fed the
// same commands hold the same state, the same Hash and the same snapshot
// bytes (WriteTo and ReadFrom: versioned, CRC-32C checked). It follows etcd
// v3: granting a live ID fails with ErrLeaseExists, a revoked ID may be
// granted again, TTLs above MaxTTL fail with ErrTTLTooLarge, TTLs below the
// table's minimum are raised to it, revoking an unknown lease fails with
// ErrLeaseNotFound. ID 0 (NoLease) means "assign an ID" in etcd's API; the
// proposer resolves it before logging the grant, and Table rejects it with
// ErrInvalidID. A Table is not safe for concurrent use with its writes;
// read-only methods may share it.
//
// Expirer runs on the leader only and is not deterministic: it tracks each
// lease's wall-clock deadline, takes renewals (KeepAlive), reports expired
// leases for the leader to revoke through the log, and produces checkpoints
// of remaining TTLs for the leader to log. It takes the current time as a
// parameter and never reads the clock itself. All its methods are safe for
// concurrent use. RateLimiter, a token bucket on the same injected clock,
// paces revokes.
//
// A leader change neither resets leases to their full TTL nor expires live
// ones early: the leader periodically logs Expirer.Checkpoints, which the
// table records, and a new leader's Expirer.Promote starts every lease from
// its checkpointed remaining TTL (at least the election timeout), or from its
// full TTL if it was never checkpointed. A renewal makes an earlier
// checkpoint stale; Expirer.Renew says when the leader must log a clearing
// checkpoint before acknowledging it.
//
// The expected wiring in the state machine and on the leader:
//
//	apply grant:       ttl, err := table.Grant(id, ttl); if err == nil { expirer.Add(id, ttl, now) }
//	apply put/delete:  table.SetKeyLease(key, leaseOrNoLease)
//	apply revoke:      keys, err := table.Revoke(id); delete keys in one revision; expirer.Remove(id)
//	apply checkpoint:  table.Checkpoint(id, remaining) for each, ignoring ErrLeaseNotFound
//	become leader:     after a barrier, expirer.Promote(now, table.Leases(), electionTimeout)
//	lose leadership:   expirer.Demote()
//	keepalive:         ttl, clear, err := expirer.Renew(id, now); if clear { log Checkpoint{id, 0}, wait }
//	expiry loop:       ids := expirer.Expired(now, limiter.Available(now)); limiter.Take(now, len(ids)); log revokes
//	checkpoint loop:   log expirer.Checkpoints(now) if not empty
//
// The checkpoint loop and the keepalive path must put their commands into
// the log in the order they called Checkpoints and Renew (call each and
// enqueue its proposal under one mutex): a clear overtaken by an older
// checkpoint would leave a stale remaining TTL behind.
//
// Expirer.Add and Remove are no-ops on a follower, so the apply path may call
// them unconditionally; the now it passes to Add is the leader's local time
// and never influences the replicated state.
package lease
