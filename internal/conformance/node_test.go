package conformance_test

// TestNodeConformance replays etcd's recorded answers against a kvstore
// node through its public API only: the methods and options a user calls.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/internal/conformance"
	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/mvcc"
)

// The modes of the node replay: every op sent to a single node, or to a
// follower of a 3-node cluster (writes forwarded, reads linearizable on
// the follower, watches opened on the follower).
var nodeModes = []struct {
	name    string
	nodes   int
	restart bool // stop and restart the node at a seeded op
	pick    func(c *kvtest.Cluster) *kvstore.Node
}{
	{"single", 1, false, func(c *kvtest.Cluster) *kvstore.Node { return c.WaitLeader() }},
	{"follower", 3, false, func(c *kvtest.Cluster) *kvstore.Node { return c.Followers()[0] }},
	{"restart", 1, true, func(c *kvtest.Cluster) *kvstore.Node { return c.WaitLeader() }},
}

func TestNodeConformance(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "seed-*.json.gz"))
	if len(paths) != 40 {
		t.Fatalf("%d golden records, want 40", len(paths))
	}
	for _, mode := range nodeModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, path := range paths {
				t.Run(filepath.Base(path), func(t *testing.T) {
					replayOnNode(t, path, mode.nodes, mode.restart, mode.pick)
				})
			}
		})
	}
}

func replayOnNode(t *testing.T, path string, nodes int, restart bool, pick func(*kvtest.Cluster) *kvstore.Node) {
	rec, err := conformance.ReadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	restartAt := 0 // the op before which the node restarts, 0 for none
	if restart {
		restartAt = 1 + rand.New(rand.NewPCG(uint64(rec.Seed), 0)).IntN(len(rec.Steps))
	}
	synctest.Test(t, func(t *testing.T) {
		// raft's default timing, as etcd's: a 1 s election timeout makes
		// the minimum lease TTL 2 s, etcd's. Virtual time makes it free.
		var stores []*nodeStore
		fresh := func() (conformance.Store, error) {
			opts := []kvtest.Option{kvtest.WithNodeOptions(
				kvstore.WithRaftTiming(time.Second, time.Second, 500*time.Millisecond, 50*time.Millisecond),
				// etcd recorded the scripts without auto-compaction, its default.
				kvstore.WithAutoCompaction(kvstore.AutoCompactionOff, 0))}
			if restart {
				opts = append(opts, kvtest.WithDisk(kvstore.LogStoreWAL)) // restart from a data dir
			}
			c := kvtest.NewCluster(t, nodes, opts...)
			s := &nodeStore{c: c, n: pick(c), restartAt: restartAt}
			stores = append(stores, s)
			return s, nil
		}
		div, err := conformance.Replay(context.Background(), fresh, rec)
		if err != nil {
			t.Fatal(err)
		}
		if div != nil {
			t.Fatal(div)
		}
		for _, s := range stores {
			if s.ops < s.restartAt {
				t.Fatalf("the node was to restart before op %d of %d", s.restartAt, s.ops)
			}
		}
	})
}

// nodeStore adapts a *kvstore.Node to conformance.Store.
type nodeStore struct {
	c       *kvtest.Cluster
	n       *kvstore.Node
	watches []*nodeWatch
	// ops counts the ops served; before op restartAt the node is stopped
	// and restarted from its state, and its watches reopened.
	ops, restartAt int
}

// tick counts an op and restarts the node when its turn has come: every
// watch is first drained to the current revision, then reopened on the
// restarted node from the last revision it delivered + 1, as a client
// resuming its watches does, or from its own start revision if that is
// later (a watch opened at a future revision has delivered nothing yet,
// and must not get the revisions before its start).
func (s *nodeStore) tick(ctx context.Context) error {
	s.ops++
	if s.ops != s.restartAt {
		return nil
	}
	rev := s.n.Status().Revision
	for _, w := range s.watches {
		if _, err := w.Drain(ctx, rev); err != nil {
			return err
		}
	}
	i := s.c.Index(s.n)
	s.c.Stop(i)
	s.c.Restart(i)
	s.n = s.c.WaitLeader()
	if got := s.n.Status().Revision; got != rev {
		return fmt.Errorf("restarted at revision %d, stopped at %d", got, rev)
	}
	for _, w := range s.watches {
		if w.canceled {
			continue
		}
		ch, err := s.n.Watch(context.Background(), w.key, append(slices.Clone(w.opts), kvstore.WithRev(w.resumeRevision()))...)
		if err != nil {
			return fmt.Errorf("reopening a watch after the restart: %w", err)
		}
		w.n, w.ch = s.n, ch
	}
	return nil
}

func nodeClassify(err error) error {
	switch {
	case errors.Is(err, kvstore.ErrNegativeWatchRevision):
		return conformance.ErrCompacted // etcd refuses it as compacted (rule 19)
	case errors.Is(err, kvstore.ErrInvalidWatchRange):
		return conformance.ErrWatchEmptyRange
	case errors.Is(err, kvstore.ErrTTLTooLarge):
		return conformance.ErrLeaseTTLTooLarge
	}
	return classify(err)
}

func getOpts(r *conformance.RangeRequest) []kvstore.OpOption {
	var o []kvstore.OpOption
	if len(r.RangeEnd) > 0 {
		o = append(o, kvstore.WithRange(b(r.RangeEnd)))
	}
	if r.Revision != 0 {
		o = append(o, kvstore.WithRev(r.Revision))
	}
	if r.Limit != 0 {
		o = append(o, kvstore.WithLimit(r.Limit))
	}
	rr := rangeReq(r)
	if rr.SortOrder != mvcc.SortNone || rr.SortTarget != mvcc.SortByKey {
		o = append(o, kvstore.WithSort(rr.SortTarget, rr.SortOrder))
	}
	if r.KeysOnly {
		o = append(o, kvstore.WithKeysOnly())
	}
	if r.CountOnly {
		o = append(o, kvstore.WithCountOnly())
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 {
		o = append(o, kvstore.WithModRevisionRange(r.MinModRevision, r.MaxModRevision))
	}
	if r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		o = append(o, kvstore.WithCreateRevisionRange(r.MinCreateRevision, r.MaxCreateRevision))
	}
	return o
}

func putOpts(r *conformance.PutRequest) []kvstore.OpOption {
	var o []kvstore.OpOption
	if r.Lease != 0 {
		o = append(o, kvstore.WithLease(r.Lease))
	}
	if r.PrevKV {
		o = append(o, kvstore.WithPrevKV())
	}
	if r.IgnoreValue {
		o = append(o, kvstore.WithIgnoreValue())
	}
	if r.IgnoreLease {
		o = append(o, kvstore.WithIgnoreLease())
	}
	return o
}

func deleteOpts(r *conformance.DeleteRequest) []kvstore.OpOption {
	var o []kvstore.OpOption
	if len(r.RangeEnd) > 0 {
		o = append(o, kvstore.WithRange(b(r.RangeEnd)))
	}
	if r.PrevKV {
		o = append(o, kvstore.WithPrevKV())
	}
	return o
}

func getResp(r *kvstore.GetResponse) *conformance.RangeResponse {
	return &conformance.RangeResponse{Revision: r.Header.Revision, Kvs: toKVs(r.KVs), Count: r.Count, More: r.More}
}

func (s *nodeStore) Put(ctx context.Context, r *conformance.PutRequest) (*conformance.PutResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	res, err := s.n.Put(ctx, b(r.Key), b(r.Value), putOpts(r)...)
	if err != nil {
		return nil, nodeClassify(err)
	}
	return &conformance.PutResponse{Revision: res.Header.Revision, PrevKV: toKV(res.PrevKV)}, nil
}

func (s *nodeStore) Range(ctx context.Context, r *conformance.RangeRequest) (*conformance.RangeResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	res, err := s.n.Get(ctx, b(r.Key), getOpts(r)...)
	if err != nil {
		return nil, nodeClassify(err)
	}
	return getResp(res), nil
}

func (s *nodeStore) Delete(ctx context.Context, r *conformance.DeleteRequest) (*conformance.DeleteResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	res, err := s.n.Delete(ctx, b(r.Key), deleteOpts(r)...)
	if err != nil {
		return nil, nodeClassify(err)
	}
	return &conformance.DeleteResponse{Revision: res.Header.Revision, Deleted: res.Deleted, PrevKVs: toKVs(res.PrevKVs)}, nil
}

var compareResults = map[conformance.CompareResult]string{
	conformance.CompareEqual: "=", conformance.CompareNotEqual: "!=", conformance.CompareLess: "<", conformance.CompareGreater: ">",
}

func txnParts(r *conformance.TxnRequest) (cmps []kvstore.Cmp, then, els []kvstore.Op) {
	for _, c := range r.Compare {
		key := b(c.Key)
		var target kvstore.Cmp
		var v any = c.Number
		switch c.Target {
		case conformance.CompareValue:
			target, v = kvstore.Value(key), b(c.Value)
		case conformance.CompareVersion:
			target = kvstore.Version(key)
		case conformance.CompareCreate:
			target = kvstore.CreateRevision(key)
		case conformance.CompareMod:
			target = kvstore.ModRevision(key)
		case conformance.CompareLease:
			target = kvstore.LeaseValue(key)
		}
		cmp := kvstore.Compare(target, compareResults[c.Result], v)
		if len(c.RangeEnd) > 0 {
			cmp = cmp.WithRange(b(c.RangeEnd))
		}
		cmps = append(cmps, cmp)
	}
	ops := func(in []conformance.TxnOp) []kvstore.Op {
		var list []kvstore.Op
		for _, op := range in {
			switch {
			case op.Put != nil:
				list = append(list, kvstore.OpPut(b(op.Put.Key), b(op.Put.Value), putOpts(op.Put)...))
			case op.Range != nil:
				list = append(list, kvstore.OpGet(b(op.Range.Key), getOpts(op.Range)...))
			case op.Delete != nil:
				list = append(list, kvstore.OpDelete(b(op.Delete.Key), deleteOpts(op.Delete)...))
			case op.Txn != nil:
				c, t, e := txnParts(op.Txn)
				list = append(list, kvstore.OpTxn(c, t, e))
			}
		}
		return list
	}
	return cmps, ops(r.Then), ops(r.Else)
}

func nodeTxnResp(r *kvstore.TxnResponse) *conformance.TxnResponse {
	out := &conformance.TxnResponse{Revision: r.Header.Revision, Succeeded: r.Succeeded}
	for _, res := range r.Responses {
		var op conformance.ResponseOp
		switch {
		case res.Put != nil:
			op.Put = &conformance.PutResponse{Revision: res.Put.Header.Revision, PrevKV: toKV(res.Put.PrevKV)}
		case res.Get != nil:
			op.Range = getResp(res.Get)
		case res.Delete != nil:
			op.Delete = &conformance.DeleteResponse{Revision: res.Delete.Header.Revision, Deleted: res.Delete.Deleted, PrevKVs: toKVs(res.Delete.PrevKVs)}
		case res.Txn != nil:
			op.Txn = nodeTxnResp(res.Txn)
		}
		out.Responses = append(out.Responses, op)
	}
	return out
}

func (s *nodeStore) Txn(ctx context.Context, r *conformance.TxnRequest) (*conformance.TxnResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	cmps, then, els := txnParts(r)
	res, err := s.n.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return nil, nodeClassify(err)
	}
	return nodeTxnResp(res), nil
}

func (s *nodeStore) Compact(ctx context.Context, r *conformance.CompactRequest) (*conformance.CompactResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	// Keep every watch current, as a client reading its watches does, so
	// that the compaction finds none behind.
	rev, _ := s.Revision(ctx)
	for _, w := range s.watches {
		if _, err := w.Drain(ctx, rev); err != nil {
			return nil, err
		}
	}
	var opts []kvstore.CompactOption
	if r.Physical {
		opts = append(opts, kvstore.WithCompactPhysical())
	}
	res, err := s.n.Compact(ctx, r.Revision, opts...)
	if err != nil {
		return nil, nodeClassify(err)
	}
	return &conformance.CompactResponse{Revision: res.Header.Revision}, nil
}

func (s *nodeStore) LeaseGrant(ctx context.Context, r *conformance.LeaseGrantRequest) (*conformance.LeaseGrantResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	res, err := s.n.Grant(ctx, r.TTL, kvstore.WithLeaseID(r.ID))
	if err != nil {
		return nil, nodeClassify(err)
	}
	return &conformance.LeaseGrantResponse{Revision: res.Header.Revision, ID: res.ID, TTL: res.TTL}, nil
}

func (s *nodeStore) LeaseRevoke(ctx context.Context, r *conformance.LeaseRevokeRequest) (*conformance.LeaseRevokeResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	res, err := s.n.Revoke(ctx, r.ID)
	if err != nil {
		return nil, nodeClassify(err)
	}
	return &conformance.LeaseRevokeResponse{Revision: res.Header.Revision}, nil
}

func (s *nodeStore) LeaseTimeToLive(ctx context.Context, r *conformance.LeaseTimeToLiveRequest) (*conformance.LeaseTimeToLiveResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	res, err := s.n.TimeToLive(ctx, r.ID, r.Keys)
	if err != nil {
		return nil, nodeClassify(err)
	}
	out := &conformance.LeaseTimeToLiveResponse{Revision: res.Header.Revision, ID: r.ID}
	if res.TTL == -1 {
		out.Missing = true
		return out, nil
	}
	out.GrantedTTL = res.GrantedTTL
	for _, k := range res.Keys {
		out.Keys = append(out.Keys, conformance.Bytes(k))
	}
	return out, nil
}

func (s *nodeStore) LeaseLeases(ctx context.Context, _ *conformance.LeaseLeasesRequest) (*conformance.LeaseLeasesResponse, error) {
	if err := s.tick(ctx); err != nil {
		return nil, err
	}
	res, err := s.n.Leases(ctx)
	if err != nil {
		return nil, nodeClassify(err)
	}
	return &conformance.LeaseLeasesResponse{Revision: res.Header.Revision, IDs: res.IDs}, nil
}

// nodeWatch collects one watch's responses for Drain.
type nodeWatch struct {
	n        *kvstore.Node
	ch       kvstore.WatchChan
	key      []byte
	opts     []kvstore.OpOption // without the start revision
	start    int64              // the start revision asked for, 0 for the next one
	prevKV   bool
	seen     int64 // every event at or below it has been delivered
	outcome  conformance.WatchOutcome
	canceled bool
}

func (s *nodeStore) Watch(ctx context.Context, r *conformance.WatchRequest) (*conformance.WatchResponse, conformance.Watcher, error) {
	if err := s.tick(ctx); err != nil {
		return nil, nil, err
	}
	var opts []kvstore.OpOption
	if len(r.RangeEnd) > 0 {
		opts = append(opts, kvstore.WithRange(b(r.RangeEnd)))
	}
	if r.PrevKV {
		opts = append(opts, kvstore.WithPrevKV())
	}
	if r.NoPut {
		opts = append(opts, kvstore.WithFilterPut())
	}
	if r.NoDelete {
		opts = append(opts, kvstore.WithFilterDelete())
	}
	start := opts
	if r.StartRevision != 0 {
		start = append(slices.Clone(opts), kvstore.WithRev(r.StartRevision))
	}
	rev := s.n.Status().Revision
	ch, err := s.n.Watch(context.Background(), b(r.Key), start...)
	if err != nil {
		return nil, nil, nodeClassify(err)
	}
	w := &nodeWatch{n: s.n, ch: ch, key: b(r.Key), opts: opts, start: r.StartRevision, prevKV: r.PrevKV}
	s.watches = append(s.watches, w)
	return &conformance.WatchResponse{Revision: rev}, w, nil
}

// resumeRevision is where a reopened watch continues: after the last
// revision it delivered, but never before the revision it asked to start
// at.
func (w *nodeWatch) resumeRevision() int64 { return max(w.start, w.seen+1) }

func (w *nodeWatch) take(resp kvstore.WatchResponse) {
	for _, ev := range resp.Events {
		out := conformance.Event{Type: ev.Type.String(), KeyValue: *toKV(&ev.KV)}
		if w.prevKV {
			out.PrevKV = toKV(ev.PrevKV)
		}
		w.outcome.Events = append(w.outcome.Events, out)
	}
	if resp.Canceled {
		w.canceled = true
		w.outcome.CompactRevision = resp.CompactRevision
	}
	if !resp.Created {
		w.seen = max(w.seen, resp.Revision)
	}
}

// Drain reads until a response bookmarks rev (every response does, up to
// its revision), asking for a progress notification when none is waiting.
func (w *nodeWatch) Drain(ctx context.Context, rev int64) (*conformance.WatchOutcome, error) {
	for !w.canceled && w.seen < rev {
		select {
		case resp, ok := <-w.ch:
			w.receive(resp, ok)
			continue
		default:
		}
		if err := w.n.RequestProgress(ctx); err != nil {
			return nil, err
		}
		select {
		case resp, ok := <-w.ch:
			w.receive(resp, ok)
		case <-ctx.Done():
			return nil, fmt.Errorf("watch drain to %d: %w", rev, ctx.Err())
		}
	}
	out := w.outcome
	out.Events = slices.Clone(out.Events)
	return &out, nil
}

// receive records one receive from the watch channel; !ok means closed.
func (w *nodeWatch) receive(resp kvstore.WatchResponse, ok bool) {
	if !ok {
		w.canceled = true
		return
	}
	w.take(resp)
}

func (s *nodeStore) Revision(context.Context) (int64, error) { return s.n.Status().Revision, nil }

// Close leaves the node to kvtest's cleanup, which also checks it.
func (s *nodeStore) Close() error { return nil }
