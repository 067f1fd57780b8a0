package storage

// lockFile is the file in a data dir that a node holds an exclusive flock
// on for as long as it has the dir open (lockdir_unix.go). The name is
// reserved on every system, including those where lockDir cannot lock, so
// the dir's layout does not depend on where it was made.
const lockFile = "kvstore.lock"
