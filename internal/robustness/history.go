package robustness

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/anishathalye/porcupine"
)

// History records what the clients did. Timestamps come from one logical
// clock shared by every client, the nemesis and the watchers: an operation
// whose return was stamped before another's call really did end before
// the other began, which is all linearizability needs (virtual time
// would stamp most operations of a synctest bubble with the same instant).
// Safe for concurrent use.
type History struct {
	clock atomic.Int64

	mu    sync.Mutex
	ops   []porcupine.Operation
	reads []SerializableRead
}

// unknownReturn is the return time of an operation whose outcome is
// unknown: after everything, so that it may be linearized anywhere after
// its call (at the very end meaning "never happened").
const unknownReturn = math.MaxInt64 / 2

// Now returns the next logical timestamp.
func (h *History) Now() int64 { return h.clock.Add(1) }

// Add records an operation of client; a Response with Unknown set gets an
// infinite return time.
func (h *History) Add(client int, req Request, call int64, resp Response, ret int64) {
	h.AddWithNote(client, req, call, resp, ret, "")
}

// AddWithNote is Add with a note on how the operation was served (shown
// by Explain and in the visualization).
func (h *History) AddWithNote(client int, req Request, call int64, resp Response, ret int64, note string) {
	if resp.Unknown {
		ret = unknownReturn
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: req, Call: call, Output: resp, Return: ret, Metadata: note})
}

// SerializableRead is a serializable Get of keys [From, End) on one node.
type SerializableRead struct {
	Client int
	// Node and Incarnation name the node instance that answered: a node
	// restarted from its storage is a new incarnation, which may start
	// from an older state.
	Node, Incarnation int
	Revision          int64
	From, End         int
	KVs               [NumKeys]KV
	// Call and Return are the read's logical timestamps (History.Now).
	Call, Return int64
	// Applied is the node's applied raft index when the read returned.
	Applied uint64
	// Note says how the node stood when the read returned.
	Note string
}

// AddRead records a serializable read.
func (h *History) AddRead(r SerializableRead) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads = append(h.reads, r)
}

// Operations returns the recorded operations.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// Reads returns the recorded serializable reads.
func (h *History) Reads() []SerializableRead {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reads)
}

// Counts summarizes the history: operations, how many had an unknown
// outcome, and serializable reads.
func (h *History) Counts() (ops, unknown, reads int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, op := range h.ops {
		if op.Output.(Response).Unknown {
			unknown++
		}
	}
	return len(h.ops), unknown, len(h.reads)
}

// CheckSerializable checks every serializable read against the committed
// states (states[r] is the state at revision r, from the replay of the
// watched revisions; valid up to len(states)-1): it must return exactly
// the state of the revision it reports, and one node incarnation never
// goes back to an older revision. Reads of a revision beyond the replay
// are counted in skipped, not checked.
//
// A read that went back together with the node's applied index is counted
// apart, in rollbacks: the node's state machine was restored from a
// snapshot older than its state. hashicorp/raft installs any snapshot the
// leader sends, and a leader that re-adds a member at the same address can
// send it twice (the replication to the removed member finishing after the
// new one caught up); the node then replays the log from the older
// snapshot. The state never diverges, but reads on that node go back for a
// while. See the report in internal/robustness/README.md.
func CheckSerializable(reads []SerializableRead, states []State) (skipped int, rollbacks, errs []error) {
	for i, a := range reads {
		// Monotonic: a read that began after another ended on the same
		// node incarnation sees at least its revision.
		for _, b := range reads[i+1:] {
			first, second := a, b
			if b.Return < a.Call {
				first, second = b, a
			} else if a.Return >= b.Call {
				continue // concurrent
			}
			if first.Node == second.Node && first.Incarnation == second.Incarnation && second.Revision < first.Revision {
				target := &errs
				if second.Applied < first.Applied {
					target = &rollbacks
				}
				*target = append(*target, fmt.Errorf("serializable reads on node %d went back from revision %d [%d,%d] (%s) to %d [%d,%d] (%s)",
					first.Node, first.Revision, first.Call, first.Return, first.Note, second.Revision, second.Call, second.Return, second.Note))
			}
		}
		if a.Revision < 1 || a.Revision >= int64(len(states)) {
			skipped++
			continue
		}
		want := states[a.Revision].Keys
		for k := a.From; k < a.End; k++ {
			if a.KVs[k] != want[k] {
				errs = append(errs, fmt.Errorf("serializable read on node %d at revision %d: %s is %+v, the committed state has %+v",
					a.Node, a.Revision, KeyName(k), a.KVs[k], want[k]))
			}
		}
	}
	return skipped, rollbacks, errs
}

// Patch resolves operations with an unknown outcome from the committed
// revisions, as etcd's robustness suite does: every put, CAS and multi
// writes a value no other operation writes, so if the value was committed
// the operation took effect at that revision (and in that branch), and if
// it was not, the operation changed nothing and is dropped. This keeps
// porcupine's search small (an unknown operation may otherwise be
// linearized anywhere after its call). It needs the reference complete up
// to its final revision; with a revision missing it changes nothing.
// Deletes, lease operations and compactions keep their unknown outcome.
func Patch(ops []porcupine.Operation, ref *Reference) []porcupine.Operation {
	if int64(len(ref.States)) <= ref.Final {
		return ops
	}
	committed := map[string]WatchEvent{}
	for _, events := range ref.Events {
		for _, e := range events {
			if !e.Delete {
				committed[e.KV.Value] = e
			}
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		req, resp := op.Input.(Request), op.Output.(Response)
		if !resp.Unknown || (req.Kind != OpPut && req.Kind != OpCAS && req.Kind != OpMulti) {
			out = append(out, op)
			continue
		}
		e, ok := committed[req.Value]
		if !ok {
			continue // never committed: it changed nothing
		}
		patched := Response{Revision: e.Revision}
		switch req.Kind {
		case OpCAS:
			patched.Succeeded = true
		case OpMulti:
			patched.Succeeded = e.Key == req.Key2
		}
		op.Output = patched
		out = append(out, op)
	}
	return out
}

// Explain looks for the operations that make a history illegal, to help
// read a porcupine failure: an operation that reports a revision older
// than one acknowledged before it began (a stale read or a write that went
// back in time), and a read whose keys differ from the committed state at
// the revision it reports. It finds the usual culprits, not all of them;
// porcupine's verdict stands either way.
func Explain(ops []porcupine.Operation, ref *Reference) []string {
	var out []string
	sorted := slices.Clone(ops)
	slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return int(a.Return - b.Return) })
	for _, op := range ops {
		req, resp := op.Input.(Request), op.Output.(Response)
		if resp.Unknown || resp.Err != "" {
			continue
		}
		var newest int64
		var newestOp porcupine.Operation
		for _, before := range sorted {
			if before.Return >= op.Call {
				break
			}
			if r := before.Output.(Response); !r.Unknown && r.Err == "" && r.Revision > newest {
				newest, newestOp = r.Revision, before
			}
		}
		if resp.Revision < newest {
			out = append(out, fmt.Sprintf("client %d: %s [%d,%d] (%v) reports revision %d, but client %d's %s returned at %d, before it began (%v)",
				op.ClientId, describe(req, resp), op.Call, op.Return, op.Metadata, resp.Revision,
				newestOp.ClientId, describe(newestOp.Input.(Request), newestOp.Output.(Response)), newestOp.Return, newestOp.Metadata))
		}
		if req.Kind == OpGet && resp.Revision < int64(len(ref.States)) {
			want := ref.States[resp.Revision].Keys
			for k := req.Key; k < req.End; k++ {
				if resp.KVs[k] != want[k] {
					out = append(out, fmt.Sprintf("client %d: %s [%d,%d]: %s at revision %d was %+v",
						op.ClientId, describe(req, resp), op.Call, op.Return, KeyName(k), resp.Revision, want[k]))
				}
			}
		}
	}
	return out
}
