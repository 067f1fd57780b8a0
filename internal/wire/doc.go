// Package wire holds every format kvstore writes for other members or for
// later: the raft log commands (command.go) and the node-to-node messages
// (rpc.go), with their encoders and decoders.
//
// These bytes outlive the build that wrote them: log entries stay as long
// as the log and snapshots keep them, and a member may call another that
// runs a different build. So formats only ever gain fields
// (with omitempty and new codec tags), never change in place; golden_test.go
// pins their bytes, and mvcc_test.go fails when an mvcc request gains a
// field the wire form does not carry.
//
// The package gives meaning to nothing: applying a command is the kvstore
// package's FSM, and the table that maps error codes to the kvstore
// package's sentinels lives there too. Decoding is deterministic, so every
// replica reads the same bytes into the same values or rejects them alike
// (ErrBadCommand); only a checksum mismatch (ErrCorruptCommand) is
// replica-local damage. Everything here is safe for concurrent use.
package wire
