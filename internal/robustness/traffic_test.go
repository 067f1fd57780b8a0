package robustness_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/robustness"
	"github.com/kvstore/kvstore/mvcc"
)

// Traffic: each client is bound to one node (through the registry, which
// follows restarts) and issues a seeded random mix of operations, one at
// a time, each with its own deadline, recording every one in the history.

const (
	// opTimeout bounds each operation (virtual time). It outlasts every
	// fault (held at most 1.2 s), so that most operations caught by one
	// end with a known outcome once it heals: operations with an unknown
	// outcome that leave no trace (lease operations, compactions) make
	// porcupine's search exponential.
	opTimeout = 3 * time.Second
	// thinkTime is the pause between a client's operations.
	thinkTime = 20 * time.Millisecond
	// leaseTTL is long enough that no lease expires in a run unless a
	// leader's clock jumps past it.
	leaseTTL = 3600
)

// registry is the nodes as the traffic sees them: the test goroutine
// updates it after every Stop, Restart and re-add (a kvtest.Cluster is for
// the test goroutine only); clients and watchers read it.
type registry struct {
	mu    sync.Mutex
	nodes []*kvstore.Node
	inc   []int // incarnation: bumped whenever a slot gets a new node
}

func (r *registry) get(i int) (*kvstore.Node, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[i], r.inc[i]
}

func (r *registry) set(i int, n *kvstore.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nodes[i] != n {
		r.nodes[i] = n
		r.inc[i]++
	}
}

// client is one traffic generator.
type client struct {
	id      int
	node    int
	rng     *rand.Rand
	reg     *registry
	hist    *robustness.History
	seq     int
	lastRev int64 // the highest revision this client saw
	mods    [robustness.NumKeys]int64
}

// run issues operations until ctx ends.
func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		n, inc := c.reg.get(c.node)
		if n == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.step(ctx, n, inc)
		time.Sleep(thinkTime)
	}
}

// weights of the operation mix, in the order of pick's switch.
var weights = []int{18, 14, 10, 8, 12, 8, 4, 8, 4, 2, 2}

func (c *client) pick() int {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := c.rng.IntN(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return 0
}

func (c *client) value() string {
	c.seq++
	return fmt.Sprintf("c%d-%d", c.id, c.seq)
}

func (c *client) step(ctx context.Context, n *kvstore.Node, inc int) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	key := c.rng.IntN(robustness.NumKeys)
	switch c.pick() {
	case 0: // put
		c.put(octx, n, key, 0)
	case 1: // linearizable range
		from := c.rng.IntN(robustness.NumKeys)
		end := from + 1 + c.rng.IntN(robustness.NumKeys-from)
		c.get(octx, n, from, end)
	case 2: // serializable range
		from := c.rng.IntN(robustness.NumKeys)
		end := from + 1 + c.rng.IntN(robustness.NumKeys-from)
		c.serializableGet(octx, n, inc, from, end)
	case 3:
		c.delete(octx, n, key)
	case 4:
		c.cas(octx, n, key)
	case 5:
		k2 := (key + 1 + c.rng.IntN(robustness.NumKeys-1)) % robustness.NumKeys
		k3 := k2
		for k3 == k2 {
			k3 = c.rng.IntN(robustness.NumKeys)
		}
		c.multi(octx, n, key, k2, k3)
	case 6:
		c.grant(octx, n, c.rng.IntN(robustness.NumLeases))
	case 7:
		c.put(octx, n, key, 1+c.rng.IntN(robustness.NumLeases))
	case 8:
		c.revoke(octx, n, c.rng.IntN(robustness.NumLeases))
	case 9:
		c.compact(octx, n)
	case 10:
		n.RequestProgress(octx) // bookmarks for the watches; not an operation of the model
	}
}

// writeOutcome classifies a write's error: a definite rejection the model
// predicts, or an unknown outcome (the write may have committed).
func writeOutcome(err error) robustness.Response {
	switch {
	case err == nil:
		return robustness.Response{}
	case errors.Is(err, kvstore.ErrLeaseNotFound), errors.Is(err, mvcc.ErrLeaseNotFound):
		return robustness.Response{Err: robustness.ErrLeaseNotFound}
	case errors.Is(err, kvstore.ErrLeaseExists):
		return robustness.Response{Err: robustness.ErrLeaseExists}
	case errors.Is(err, kvstore.ErrCompacted):
		return robustness.Response{Err: robustness.ErrCompacted}
	case errors.Is(err, kvstore.ErrFutureRevision):
		return robustness.Response{Err: robustness.ErrFutureRev}
	}
	return robustness.Response{Unknown: true}
}

func (c *client) record(req robustness.Request, call int64, resp robustness.Response, n *kvstore.Node) {
	if resp.Revision > c.lastRev {
		c.lastRev = resp.Revision
	}
	ret := c.hist.Now()
	c.hist.AddWithNote(c.id, req, call, resp, ret, statusNote(n))
}

// statusNote describes how node n stands, for the history.
func statusNote(n *kvstore.Node) string {
	st := n.Status()
	return fmt.Sprintf("%s %s term %d leader %s commit %d applied %d revision %d", st.ID, st.RaftState, st.RaftTerm, st.LeaderID, st.CommitIndex, st.AppliedIndex, st.Revision)
}

func leaseID(idx int) int64 { return int64(robustness.LeaseBase + idx) }

// modelKV converts a key-value to the model's terms.
func modelKV(kv *kvstore.KeyValue) robustness.KV {
	out := robustness.KV{Value: string(kv.Value), Create: kv.CreateRevision, Mod: kv.ModRevision, Version: kv.Version}
	if kv.Lease != 0 {
		out.Lease = kv.Lease - robustness.LeaseBase + 1
	}
	return out
}

func keyIndex(key []byte) int {
	var i int
	fmt.Sscanf(string(key), "k%d", &i)
	return i
}

func (c *client) put(ctx context.Context, n *kvstore.Node, key, lease int) {
	req := robustness.Request{Kind: robustness.OpPut, Key: key, Value: c.value(), Lease: lease}
	var opts []kvstore.OpOption
	if lease != 0 {
		opts = append(opts, kvstore.WithLease(leaseID(lease-1)))
	}
	call := c.hist.Now()
	resp, err := n.Put(ctx, []byte(robustness.KeyName(key)), []byte(req.Value), opts...)
	out := writeOutcome(err)
	if err == nil {
		out.Revision = resp.Header.Revision
		c.mods[key] = resp.Header.Revision
	}
	c.record(req, call, out, n)
}

func (c *client) get(ctx context.Context, n *kvstore.Node, from, end int) {
	req := robustness.Request{Kind: robustness.OpGet, Key: from, End: end}
	call := c.hist.Now()
	resp, err := n.Get(ctx, []byte(robustness.KeyName(from)), kvstore.WithRange([]byte(robustness.KeyName(end))))
	if err != nil {
		return // a failed read changed nothing
	}
	out := robustness.Response{Revision: resp.Header.Revision}
	for i := range resp.KVs {
		k := keyIndex(resp.KVs[i].Key)
		out.KVs[k] = modelKV(&resp.KVs[i])
		c.mods[k] = resp.KVs[i].ModRevision
	}
	c.record(req, call, out, n)
}

func (c *client) serializableGet(ctx context.Context, n *kvstore.Node, inc, from, end int) {
	call := c.hist.Now()
	resp, err := n.Get(ctx, []byte(robustness.KeyName(from)), kvstore.WithRange([]byte(robustness.KeyName(end))), kvstore.WithSerializable())
	if err != nil {
		return
	}
	r := robustness.SerializableRead{Client: c.id, Node: c.node, Incarnation: inc, Revision: resp.Header.Revision, From: from, End: end, Call: call}
	for i := range resp.KVs {
		r.KVs[keyIndex(resp.KVs[i].Key)] = modelKV(&resp.KVs[i])
	}
	r.Return = c.hist.Now()
	r.Note, r.Applied = statusNote(n), n.Status().AppliedIndex
	c.hist.AddRead(r)
}

func (c *client) delete(ctx context.Context, n *kvstore.Node, key int) {
	req := robustness.Request{Kind: robustness.OpDelete, Key: key}
	call := c.hist.Now()
	resp, err := n.Delete(ctx, []byte(robustness.KeyName(key)))
	out := writeOutcome(err)
	if err == nil {
		out.Revision, out.Deleted = resp.Header.Revision, resp.Deleted
	}
	c.record(req, call, out, n)
}

// cas: If(ModRevision(key) == the last mod revision this client saw, or
// sometimes 0) Then(Put) Else(Get).
func (c *client) cas(ctx context.Context, n *kvstore.Node, key int) {
	expect := c.mods[key]
	if c.rng.IntN(4) == 0 {
		expect = 0
	}
	req := robustness.Request{Kind: robustness.OpCAS, Key: key, Expect: expect, Value: c.value()}
	k := []byte(robustness.KeyName(key))
	call := c.hist.Now()
	resp, err := n.Txn(ctx).
		If(kvstore.Compare(kvstore.ModRevision(k), "=", expect)).
		Then(kvstore.OpPut(k, []byte(req.Value))).
		Else(kvstore.OpGet(k)).
		Commit()
	out := writeOutcome(err)
	if err == nil {
		out.Revision, out.Succeeded = resp.Header.Revision, resp.Succeeded
		if resp.Succeeded {
			c.mods[key] = resp.Header.Revision
		} else if get := resp.Responses[0].Get; get != nil {
			for i := range get.KVs {
				out.KVs[key] = modelKV(&get.KVs[i])
				c.mods[key] = get.KVs[i].ModRevision
			}
		}
	}
	c.record(req, call, out, n)
}

// multi: If(Version(key) > 0) Then(Put(k2), Delete(k3)) Else(Put(k3)).
func (c *client) multi(ctx context.Context, n *kvstore.Node, key, k2, k3 int) {
	req := robustness.Request{Kind: robustness.OpMulti, Key: key, Key2: k2, Key3: k3, Value: c.value()}
	name := func(k int) []byte { return []byte(robustness.KeyName(k)) }
	call := c.hist.Now()
	resp, err := n.Txn(ctx).
		If(kvstore.Compare(kvstore.Version(name(key)), ">", 0)).
		Then(kvstore.OpPut(name(k2), []byte(req.Value)), kvstore.OpDelete(name(k3))).
		Else(kvstore.OpPut(name(k3), []byte(req.Value))).
		Commit()
	out := writeOutcome(err)
	if err == nil {
		out.Revision, out.Succeeded = resp.Header.Revision, resp.Succeeded
	}
	c.record(req, call, out, n)
}

func (c *client) grant(ctx context.Context, n *kvstore.Node, lease int) {
	req := robustness.Request{Kind: robustness.OpGrant, Lease: lease}
	call := c.hist.Now()
	resp, err := n.Grant(ctx, leaseTTL, kvstore.WithLeaseID(leaseID(lease)))
	out := writeOutcome(err)
	if err == nil {
		out.Revision = resp.Header.Revision
	}
	c.record(req, call, out, n)
}

func (c *client) revoke(ctx context.Context, n *kvstore.Node, lease int) {
	req := robustness.Request{Kind: robustness.OpRevoke, Lease: lease}
	call := c.hist.Now()
	resp, err := n.Revoke(ctx, leaseID(lease))
	out := writeOutcome(err)
	if err == nil {
		out.Revision = resp.Header.Revision
	}
	c.record(req, call, out, n)
}

// compact compacts some way behind the newest revision the client saw.
func (c *client) compact(ctx context.Context, n *kvstore.Node) {
	rev := c.lastRev - 10 - int64(c.rng.IntN(20))
	if rev < 1 {
		return
	}
	req := robustness.Request{Kind: robustness.OpCompact, Revision: rev}
	call := c.hist.Now()
	resp, err := n.Compact(ctx, rev)
	out := writeOutcome(err)
	if err == nil {
		out.Revision = resp.Header.Revision
	}
	c.record(req, call, out, n)
}

func newClientRand(seed uint64, id int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(id)+1))
}
