package kvstore

import (
	"fmt"

	"github.com/kvstore/kvstore/transport"
)

// Peer addresses. raft records every member's address in its
// configuration, and the others dial a member at the address recorded
// there, never at the one it listens on. So an address is checked wherever
// one enters the configuration: the bootstrap members at Open (each well
// formed for the transport, this node's own equal to its transport's
// LocalAddr), a member to add (AddVoter, AddLearner, a joiner's own
// address) on the member asked and again on the leader, and the members a
// joiner contacts. A member whose recorded address no longer is its
// transport's asks, once restarted, for it to be updated (readvertise.go).

// checkPeerAddress reports whether t could dial addr, by t's own rules when
// it is a transport.AddressValidator; any other transport is given any
// non-empty address. The error wraps ErrInvalidAddress.
func checkPeerAddress(t transport.Transport, addr string) error {
	if v, ok := t.(transport.AddressValidator); ok {
		return v.ValidateAddress(addr)
	}
	if addr == "" {
		return fmt.Errorf("%w \"\": empty", ErrInvalidAddress)
	}
	return nil
}

// checkBootstrap checks the WithBootstrap members against the transport:
// every address well formed for it, and this node among them at its
// transport's address. It runs at every Open, before the data dir is
// touched, whether or not the dir's state makes the bootstrap moot: a
// configuration that contradicts itself is refused the same way each time.
func (c *config) checkBootstrap() error {
	if len(c.bootstrap) == 0 {
		return nil
	}
	var self *Peer
	for i, p := range c.bootstrap {
		if err := checkPeerAddress(c.transport, p.Address); err != nil {
			return fmt.Errorf("%w: WithBootstrap: peer %q: %w", ErrInvalidOption, p.ID, err)
		}
		if p.ID == c.id {
			self = &c.bootstrap[i]
		}
	}
	local := string(c.transport.LocalAddr())
	switch {
	case self == nil:
		return invalid("WithBootstrap", "the peers do not include this node %q", c.id)
	case self.Address != local:
		return invalid("WithBootstrap", "this node %q is listed at %q, but its transport's address (LocalAddr, what it tells its peers) is %q; list it at %q, or give the transport that address",
			c.id, self.Address, local, local)
	}
	return nil
}
