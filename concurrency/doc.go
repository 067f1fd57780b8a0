// Package concurrency builds coordination recipes on a kvstore node's
// public API, in process: sessions, mutexes with fencing tokens, leader
// elections and software transactional memory (STM). They follow etcd's
// clientv3/concurrency in algorithm and key layout, so that tools which
// read etcd's lock and election keys read these, and differ where etcd's
// have sharp edges.
//
// # Basics
//
//   - [Session]: a lease kept alive in the background. Its Done channel
//     closes as soon as the session is known lost (the lease expired or
//     was revoked, it could not be renewed in time, its node closed or was
//     removed); a leader change does not end it.
//   - [Mutex]: Lock, TryLock, Unlock. Every acquisition has a fencing
//     token, and [Mutex.Txn] makes a write conditional on still holding
//     the lock, so a holder that paused past its lease cannot write.
//   - [Election]: Campaign, Proclaim, Resign, Leader, Observe, with the
//     same fencing for the leader's writes ([Election.Txn]).
//   - [NewSTM]: a function of reads and writes run as one serializable
//     (or repeatable-read, or read-committed) transaction, retried on
//     conflict a bounded number of times.
//
// Every recipe works through any member: contenders on different members
// of one cluster, in one process or in many, coordinate with each other.
//
// # Caveats
//
//   - A lock held through a lease cannot promise mutual exclusion in
//     time: a holder can act after its lease expired if it paused, or if
//     its clock runs slow. It can promise that writes made through
//     [Mutex.Txn] are refused once the lock has passed on (Mutex's doc
//     says exactly what holds). The same goes for an elected leader.
//   - A write whose outcome is unknown (kvstore.ErrOutcomeUnknown: the raft
//     leader changed after proposing it) is retried by this package only
//     where repeating it is harmless: acquiring, releasing, campaigning,
//     resigning. An STM commit or a fenced txn is returned to the caller
//     with that error, since it may have happened.
//   - Goroutines: a Session runs one (its renewals) until it ends; Observe
//     runs one until its context ends; everything else runs on the
//     caller's goroutine.
package concurrency
