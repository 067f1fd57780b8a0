package wire

import (
	"errors"
	"fmt"
)

var (
	// ErrBadCommand reports a log entry that is not a command this build
	// can apply. Every replica sees the same bytes, so every replica
	// rejects it the same way.
	ErrBadCommand = errors.New("kvstore: bad log command")
	// ErrCorruptCommand reports a command whose checksum does not match:
	// this replica's copy was damaged, so rejecting it would diverge from
	// the others. The FSM stops the process instead, and Open refuses a
	// log holding one (ErrCorruptLog). It matches ErrBadCommand too.
	ErrCorruptCommand = fmt.Errorf("%w: checksum mismatch", ErrBadCommand)
	// ErrBadRPC reports a node-to-node message that could not be read
	// (kvstore exports it under the same name).
	ErrBadRPC = errors.New("kvstore: bad node-to-node message")
)
