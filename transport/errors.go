package transport

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

var (
	// ErrUnreachable reports that a message could not be delivered to, or its reply could not
	// be received from, a peer: the peer is unknown, closed, cut off by a fault, cannot be
	// dialled, refused the connection (TLS handshake included) or dropped it. Errors wrapping
	// it name the peer.
	ErrUnreachable = errors.New("transport: peer unreachable")
	// ErrClosed reports an operation on, or interrupted by the closing of, the local transport.
	ErrClosed = errors.New("transport: closed")
	// ErrNoHandler reports a Call to a peer that has not installed a Handler.
	ErrNoHandler = errors.New("transport: no handler")
	// ErrAddressInUse reports a Join with an address that a live transport of the same Network
	// already holds.
	ErrAddressInUse = errors.New("transport: address in use")
	// ErrPeerIdentity reports a refusal by the peer identity check ([WithPeerIDCheck]): the
	// server's certificate does not name the raft server ID the caller expected at its address;
	// or the server refused this node, whose certificate does not name the ID it stated (or
	// that stated none); or the server refused a raft RPC whose header names another server
	// than the one the connection was authenticated as. It is always wrapped together with
	// [ErrUnreachable]: the intended peer was not reached, and nothing was done.
	ErrPeerIdentity = errors.New("transport: peer identity refused")
	// ErrTooLarge reports a Call request or reply over the transport's message size limit (see
	// [WithMaxMessageSize]). Nothing is sent for an oversized request.
	ErrTooLarge = errors.New("transport: message too large")
	// ErrInvalidAddress reports a peer address that a transport could never dial: malformed for
	// its kind (see [AddressValidator]). The error names the address and what is wrong with it.
	ErrInvalidAddress = errors.New("transport: invalid address")
	// ErrInvalidOption reports an option or option combination that [NewTCP] refuses; the
	// error names the option.
	ErrInvalidOption = errors.New("transport: invalid option")
	// ErrNotDelivered marks a Call failure after which the request certainly did not reach
	// the peer's handler, so the Call had no effect there and may be sent again: the peer is
	// unknown or closed, the request direction is cut, the dial or handshake failed, the peer
	// identity check refused, the request was over the size limit, the connection broke before
	// the request was queued on it, the peer has no handler, or the peer, closing, said on the
	// connection (TCP's goaway) that it handles no request sent after the last it accepted. It never stands alone: the
	// error also matches the reason ([ErrUnreachable], [ErrTooLarge], [ErrNoHandler]), and its
	// text is the reason's. A Call failure that does not match it (a connection lost with the
	// request on it, a lost reply, a deadline) may have run the handler.
	ErrNotDelivered = errors.New("transport: request not delivered")
)

// notDeliveredError is a Call failure that also matches ErrNotDelivered; its text is the
// cause's alone.
type notDeliveredError struct{ cause error }

func (e *notDeliveredError) Error() string   { return e.cause.Error() }
func (e *notDeliveredError) Unwrap() []error { return []error{e.cause, ErrNotDelivered} }

// notDelivered marks err, a Call failure before the request reached the peer's handler, with
// ErrNotDelivered. nil stays nil.
func notDelivered(err error) error {
	if err == nil || errors.Is(err, ErrNotDelivered) {
		return err
	}
	return &notDeliveredError{cause: err}
}

// unreachable builds an error wrapping ErrUnreachable that names the peer and the reason.
func unreachable(addr raft.ServerAddress, why string) error {
	return fmt.Errorf("%w: %s (%s)", ErrUnreachable, addr, why)
}

// unreachableErr builds an error wrapping ErrUnreachable and cause, naming the peer.
func unreachableErr(addr raft.ServerAddress, cause error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnreachable, addr, cause)
}

// invalid builds an error wrapping ErrInvalidOption that names the option.
func invalid(option, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, option, fmt.Sprintf(format, args...))
}
