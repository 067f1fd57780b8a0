package config

import (
	"errors"
	"fmt"
)

// Errors returned by this package, matched with errors.Is. Every error of
// a write means nothing was written, except those of the node that say
// otherwise (kvstore.ErrOutcomeUnknown, a context that ended after the
// write was proposed).
var (
	// ErrNilNode reports a nil *kvstore.Node.
	ErrNilNode = errors.New("config: nil node")
	// ErrNilCodec reports a nil Codec.
	ErrNilCodec = errors.New("config: nil codec")
	// ErrInvalidPrefix reports an empty prefix (or one that is only "/").
	ErrInvalidPrefix = errors.New("config: invalid prefix")
	// ErrInvalidName reports a name that is empty, holds the separator
	// "/", or is not valid UTF-8.
	ErrInvalidName = errors.New("config: invalid name")
	// ErrInvalidOption reports an option New cannot use: a validator for
	// another type, a negative retry count.
	ErrInvalidOption = errors.New("config: invalid option")
	// ErrNotFound reports a name with no stored value.
	ErrNotFound = errors.New("config: not found")
	// ErrInvalid reports a value its validator refused; the error is a
	// *ValidationError.
	ErrInvalid = errors.New("config: invalid value")
	// ErrEncode reports a value the codec could not encode.
	ErrEncode = errors.New("config: cannot encode value")
	// ErrDecode reports a stored value the codec could not decode into
	// the Config's type; the error is a *DecodeError.
	ErrDecode = errors.New("config: cannot decode stored value")
	// ErrConflict reports an Update that lost the race to other writers on
	// every attempt it was allowed (WithRetries).
	ErrConflict = errors.New("config: update conflicted too often")
)

// ValidationError is a value refused by validation; nothing was written.
type ValidationError struct {
	Name string
	Err  error // the validator's error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("config: invalid value for %q: %v", e.Name, e.Err)
}

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func (e *ValidationError) Unwrap() error { return e.Err }

// DecodeError is a stored value that does not decode into the Config's
// type: written by another program or an older version of this one, or
// by hand.
type DecodeError struct {
	Name string
	// Revision is the mod revision of the value that failed.
	Revision int64
	Err      error // the codec's error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("config: cannot decode %q at revision %d: %v", e.Name, e.Revision, e.Err)
}

// Is makes errors.Is(err, ErrDecode) hold.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

func (e *DecodeError) Unwrap() error { return e.Err }
