package transport

import "github.com/hashicorp/raft"

// link is one direction of the path between two addresses.
type link struct {
	from, to raft.ServerAddress
}

// faults is the set of injected network faults of a Network. It is not safe for concurrent use;
// Network guards it with its mutex.
//
// Three independent layers drop messages: a partition (set as a whole by Partition), isolated
// addresses (added by Isolate) and one-way cuts (added by Cut). A message is lost if any layer
// drops it. Heal clears all three.
type faults struct {
	// group maps each address listed in the current partition to its group number (1-based);
	// unlisted addresses are in group 0 together. Nil when there is no partition.
	group    map[raft.ServerAddress]int
	isolated map[raft.ServerAddress]struct{}
	cuts     map[link]struct{}
}

// blocks reports whether a message from→to is lost. Partitions and isolation never drop a
// node's messages to itself; an explicit Cut(a, a) does.
func (f *faults) blocks(from, to raft.ServerAddress) bool {
	if _, ok := f.cuts[link{from, to}]; ok {
		return true
	}
	if from == to {
		return false
	}
	if _, ok := f.isolated[from]; ok {
		return true
	}
	if _, ok := f.isolated[to]; ok {
		return true
	}
	return f.group[from] != f.group[to]
}

// Partition splits the network into groups: nodes in different groups cannot exchange messages
// in either direction, nodes in the same group can. Nodes not listed in any group form one
// further group together. An address listed in several groups belongs to the last of them.
//
// Partition replaces the previous partition, if any; isolation and cuts stay in force.
// Partition() with no groups removes the partition. It takes effect immediately for new
// messages (and for replies not yet delivered).
func (n *Network) Partition(groups ...[]raft.ServerAddress) {
	var g map[raft.ServerAddress]int
	if len(groups) > 0 {
		g = make(map[raft.ServerAddress]int)
		for i, members := range groups {
			for _, a := range members {
				g[a] = i + 1
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults.group = g
}

// Isolate cuts addr off from every other address, in both directions, until Heal. addr need
// not have joined yet.
func (n *Network) Isolate(addr raft.ServerAddress) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.faults.isolated == nil {
		n.faults.isolated = make(map[raft.ServerAddress]struct{})
	}
	n.faults.isolated[addr] = struct{}{}
}

// Cut drops every message sent from `from` to `to`, until Heal; the opposite direction is not
// affected. For a Call (and a raft RPC) this means: if the request direction is cut the request
// is not delivered and the caller gets ErrUnreachable at once; if only the reply direction is
// cut the request is delivered and processed, and the caller gets ErrUnreachable instead of the
// reply.
func (n *Network) Cut(from, to raft.ServerAddress) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.faults.cuts == nil {
		n.faults.cuts = make(map[link]struct{})
	}
	n.faults.cuts[link{from, to}] = struct{}{}
}

// Heal removes every partition, isolation and cut.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = faults{}
}

// Blocked reports whether the faults injected now (partition, isolation, cuts) drop a message
// sent from→to; it does not ask whether a transport is live at to. A harness uses it to tell
// which nodes can hear each other, as kvtest's WaitLeader does.
func (n *Network) Blocked(from, to raft.ServerAddress) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.faults.blocks(from, to)
}
