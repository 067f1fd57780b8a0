package robustness

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The key space of the traffic is small on purpose, so that operations
// collide: keys k0…k(NumKeys-1) and leases with IDs LeaseBase+0…
const (
	NumKeys   = 6
	NumLeases = 3
	LeaseBase = 1000
)

// KeyName is the key of index i.
func KeyName(i int) string { return fmt.Sprintf("k%d", i) }

// KV is one key's state in the model; Version 0 means the key is absent.
// Leases are lease indexes + 1 (0 for none).
type KV struct {
	Value                string
	Create, Mod, Version int64
	Lease                int64
}

// State is the model's state: a comparable value, so porcupine can compare
// and cache it cheaply.
type State struct {
	Revision, CompactRevision int64
	Keys                      [NumKeys]KV
	Leases                    [NumLeases]bool
}

// OpKind names a client operation.
type OpKind uint8

const (
	OpPut OpKind = iota + 1
	OpGet
	OpDelete
	OpCAS    // If(ModRevision(Key) == Expect) Then(Put(Key, Value)) Else(Get(Key))
	OpMulti  // If(Version(Key) > 0) Then(Put(Key2, Value), Delete(Key3)) Else(Put(Key3, Value))
	OpGrant  // lease Lease
	OpRevoke // lease Lease
	OpCompact
	// OpExpire is not issued by a client: it stands for the leader
	// revoking lease Lease because it expired (after a clock jump). It is
	// always recorded with an unknown outcome.
	OpExpire
)

var opNames = [...]string{"", "put", "get", "delete", "cas", "multi", "grant", "revoke", "compact", "expire"}

func (k OpKind) String() string { return opNames[k] }

// Request is an operation's input.
type Request struct {
	Kind OpKind
	// Key, Key2, Key3 are key indexes; a Get reads [Key, End).
	Key, Key2, Key3, End int
	Value                string
	// Lease is a lease index + 1 for a put (0 for none), a lease index
	// for grant, revoke and expire.
	Lease    int
	Expect   int64 // OpCAS
	Revision int64 // OpCompact
}

// Errors an operation can definitely end with (applied as a rejection,
// identically on every member).
const (
	ErrNone          = ""
	ErrLeaseNotFound = "lease not found"
	ErrLeaseExists   = "lease exists"
	ErrCompacted     = "compacted"
	ErrFutureRev     = "future revision"
)

// Response is an operation's output.
type Response struct {
	// Unknown marks an operation whose outcome is unknown: it may or may
	// not have taken effect, and nothing else in the response is known.
	Unknown bool
	Err     string
	// Revision is the response header's revision.
	Revision int64
	// Succeeded is a txn's branch.
	Succeeded bool
	// Deleted is a delete's count.
	Deleted int64
	// KVs are the keys a Get (or the Else branch of a CAS) read, by index,
	// absent keys zero.
	KVs [NumKeys]KV
}

// Step applies req to s and returns the state after it and the response
// the operation must have given. A rejected request (Err set) leaves the
// state as it was. It is a pure function: s is a value.
func Step(s State, req Request) (State, Response) {
	var r Response
	bump := func() { s.Revision++ }
	put := func(k int, value string, leaseIdx int64) {
		kv := &s.Keys[k]
		if kv.Version == 0 {
			kv.Create, kv.Version = s.Revision, 1
		} else {
			kv.Version++
		}
		kv.Value, kv.Mod, kv.Lease = value, s.Revision, leaseIdx
	}
	switch req.Kind {
	case OpPut:
		if req.Lease != 0 && !s.Leases[req.Lease-1] {
			r.Err = ErrLeaseNotFound
			break
		}
		bump()
		put(req.Key, req.Value, int64(req.Lease))
	case OpGet:
		for k := req.Key; k < req.End; k++ {
			r.KVs[k] = s.Keys[k]
		}
	case OpDelete:
		if s.Keys[req.Key].Version != 0 {
			bump()
			s.Keys[req.Key] = KV{}
			r.Deleted = 1
		}
	case OpCAS:
		r.Succeeded = s.Keys[req.Key].Mod == req.Expect
		if r.Succeeded {
			bump()
			put(req.Key, req.Value, 0)
		} else {
			r.KVs[req.Key] = s.Keys[req.Key]
		}
	case OpMulti:
		r.Succeeded = s.Keys[req.Key].Version > 0
		bump()
		if r.Succeeded {
			put(req.Key2, req.Value, 0)
			s.Keys[req.Key3] = KV{}
		} else {
			put(req.Key3, req.Value, 0)
		}
	case OpGrant:
		if s.Leases[req.Lease] {
			r.Err = ErrLeaseExists
			break
		}
		s.Leases[req.Lease] = true
	case OpRevoke, OpExpire:
		if !s.Leases[req.Lease] {
			r.Err = ErrLeaseNotFound
			break
		}
		s.Leases[req.Lease] = false
		changed := false
		for k := range s.Keys {
			if s.Keys[k].Version != 0 && s.Keys[k].Lease == int64(req.Lease)+1 {
				if !changed {
					bump()
					changed = true
				}
				s.Keys[k] = KV{}
			}
		}
	case OpCompact:
		switch {
		case req.Revision > s.Revision:
			r.Err = ErrFutureRev
		case req.Revision <= s.CompactRevision:
			r.Err = ErrCompacted
		default:
			s.CompactRevision = req.Revision
		}
	}
	r.Revision = s.Revision
	return s, r
}

// Model is the porcupine model of the store. An operation with an unknown
// outcome always takes effect when linearized: porcupine may linearize it
// after every other operation, which is the same as never.
var Model = porcupine.Model{
	Init: func() interface{} { return State{Revision: 1} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		next, want := Step(state.(State), input.(Request))
		got := output.(Response)
		switch {
		case got.Unknown:
			return true, next
		case got.Err != "":
			// A rejected request carries no header: only the error is
			// known, and a rejection changes nothing.
			return want.Err == got.Err, state
		}
		return want == got, next
	},
	Equal: func(a, b interface{}) bool { return a.(State) == b.(State) },
	Hash:  func(state interface{}) uint64 { return hashState(state.(State)) },
	DescribeOperation: func(input, output interface{}) string {
		return describe(input.(Request), output.(Response))
	},
	DescribeState: func(state interface{}) string { return describeState(state.(State)) },
}

// hashState is FNV-1a over the state's fields (porcupine calls it for
// every state it visits, so it must be cheap).
func hashState(s State) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		for range 8 {
			h ^= v & 0xff
			h *= 1099511628211
			v >>= 8
		}
	}
	mix(uint64(s.Revision))
	mix(uint64(s.CompactRevision))
	for _, kv := range s.Keys {
		mix(uint64(kv.Mod))
		mix(uint64(kv.Lease))
		mix(uint64(len(kv.Value)))
	}
	for i, l := range s.Leases {
		if l {
			mix(uint64(i + 1))
		}
	}
	return h
}

func describe(req Request, r Response) string {
	var in string
	switch req.Kind {
	case OpPut:
		in = fmt.Sprintf("put(%s, %s, lease %d)", KeyName(req.Key), req.Value, req.Lease)
	case OpGet:
		in = fmt.Sprintf("get(%s..%s)", KeyName(req.Key), KeyName(req.End))
	case OpDelete:
		in = fmt.Sprintf("delete(%s)", KeyName(req.Key))
	case OpCAS:
		in = fmt.Sprintf("cas(%s mod=%d -> %s)", KeyName(req.Key), req.Expect, req.Value)
	case OpMulti:
		in = fmt.Sprintf("multi(%s? put %s=%s, del %s : put %s)", KeyName(req.Key), KeyName(req.Key2), req.Value, KeyName(req.Key3), KeyName(req.Key3))
	case OpGrant, OpRevoke, OpExpire:
		in = fmt.Sprintf("%s(lease %d)", req.Kind, req.Lease)
	case OpCompact:
		in = fmt.Sprintf("compact(%d)", req.Revision)
	}
	if r.Unknown {
		return in + " -> unknown"
	}
	out := fmt.Sprintf("rev %d", r.Revision)
	if r.Err != "" {
		out += " " + r.Err
	}
	switch req.Kind {
	case OpCAS, OpMulti:
		out += fmt.Sprintf(" succeeded=%v", r.Succeeded)
	case OpDelete:
		out += fmt.Sprintf(" deleted=%d", r.Deleted)
	}
	if req.Kind == OpGet || (req.Kind == OpCAS && !r.Succeeded) {
		out += " " + describeKVs(r.KVs[:])
	}
	return in + " -> " + out
}

func describeKVs(kvs []KV) string {
	var parts []string
	for k, kv := range kvs {
		if kv.Version != 0 {
			parts = append(parts, fmt.Sprintf("%s=%s@%d/c%d/v%d/l%d", KeyName(k), kv.Value, kv.Mod, kv.Create, kv.Version, kv.Lease))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func describeState(s State) string {
	return fmt.Sprintf("rev %d compact %d leases %v %s", s.Revision, s.CompactRevision, s.Leases, describeKVs(s.Keys[:]))
}
