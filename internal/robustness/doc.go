// Package robustness is kvstore's robustness suite, after etcd's
// tests/robustness: several clients issue random traffic against an
// in-process cluster (kvtest) while a nemesis injects faults, every
// operation is recorded with its call and return, and the history is
// checked afterwards:
//
//   - linearizability of every client operation, with porcupine, against
//     a model of the key-value store that includes the revision (model.go);
//     an operation whose outcome is unknown may or may not have happened;
//   - serializable reads: each returns the state of some committed revision
//     and never goes backwards on one node (history.go);
//   - every watch guarantee — ordered, unique, reliable, atomic, resumable,
//     bookmarkable, prev-kv correct — against the replay of the committed
//     revisions (watchcheck.go);
//   - at the end, members agree on one hash at one revision and leave no
//     goroutine behind (kvtest's cleanup).
//
// The suite runs in testing/synctest virtual time. A seed fixes the fault
// schedule and each client's traffic; raft's own timing (elections draw
// from the global random source) is not controlled, so a seed replays the
// same schedule, not necessarily the same interleaving.
//
// # Running
//
//	go test -run Robustness ./internal/robustness            # the CI seeds
//	KVSTORE_ROBUSTNESS_SEEDS=500 go test -run Robustness -timeout 0 ./internal/robustness
//	KVSTORE_ROBUSTNESS_SEED=1234 go test -run Robustness/seed=1234 ./internal/robustness
//
// A failure prints the seed, the fault schedule, and the path of porcupine's
// HTML visualization of the history (kept under os.TempDir).
package robustness
