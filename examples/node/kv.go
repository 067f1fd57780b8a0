package main

import (
	"fmt"
	"io"
	"net/http"

	"github.com/kvstore/kvstore"
)

// The key-value endpoints: PUT, GET and DELETE on /v1/kv/{key...}, and
// POST /v1/compact. The key is the rest of the path, percent-decoded
// (encoding.go).

// putResponse answers PUT /v1/kv/{key}.
type putResponse struct {
	Header jsonHeader `json:"header"`
	PrevKV *jsonKV    `json:"prev_kv,omitempty"`
}

// getResponse answers GET /v1/kv/{key}. A key that does not exist is not
// an error: kvs is empty and count 0, as etcd answers a range.
type getResponse struct {
	Header jsonHeader `json:"header"`
	KVs    []*jsonKV  `json:"kvs"`
	// Count is the number of keys in the range, before limit.
	Count int64 `json:"count"`
	// More reports that limit cut off keys.
	More bool `json:"more"`
}

// deleteResponse answers DELETE /v1/kv/{key}.
type deleteResponse struct {
	Header  jsonHeader `json:"header"`
	Deleted int64      `json:"deleted"`
	PrevKVs []*jsonKV  `json:"prev_kvs,omitempty"`
}

// put writes the request body as the value of the key.
// Query: lease=ID (decimal), prev_kv, encoding.
func (a *api) put(r *http.Request, q *query) (any, error) {
	key := []byte(r.PathValue("key"))
	lease := q.int("lease")
	prevKV := q.flag("prev_kv")
	enc := q.encoding()
	if err := q.done(); err != nil {
		return nil, err
	}
	value, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the value: %w", errBadRequest, err)
	}
	var opts []kvstore.OpOption
	if lease != 0 {
		opts = append(opts, kvstore.WithLease(lease))
	}
	if prevKV {
		opts = append(opts, kvstore.WithPrevKV())
	}
	resp, err := a.node.Put(r.Context(), key, value, opts...)
	if err != nil {
		return nil, err
	}
	return putJSON(resp, enc), nil
}

func putJSON(resp *kvstore.PutResponse, enc encoding) *putResponse {
	return &putResponse{Header: headerJSON(resp.Header), PrevKV: enc.kv(resp.PrevKV, true)}
}

// getQuery is what GET /v1/kv reads from its query.
type getQuery struct {
	prefix, fromKey                   bool
	rev, limit                        int64
	serializable, keysOnly, countOnly bool
	enc                               encoding
}

func readGetQuery(q *query) (getQuery, error) {
	g := getQuery{
		prefix: q.flag("prefix"), fromKey: q.flag("from_key"),
		rev: q.int("rev"), limit: q.int("limit"),
		serializable: q.flag("serializable"), keysOnly: q.flag("keys_only"), countOnly: q.flag("count_only"),
		enc: q.encoding(),
	}
	return g, q.done()
}

func (g getQuery) options() []kvstore.OpOption {
	var opts []kvstore.OpOption
	add := func(on bool, o kvstore.OpOption) {
		if on {
			opts = append(opts, o)
		}
	}
	add(g.prefix, kvstore.WithPrefix())
	add(g.fromKey, kvstore.WithFromKey())
	add(g.rev != 0, kvstore.WithRev(g.rev))
	add(g.limit != 0, kvstore.WithLimit(g.limit))
	add(g.serializable, kvstore.WithSerializable())
	add(g.keysOnly, kvstore.WithKeysOnly())
	add(g.countOnly, kvstore.WithCountOnly())
	return opts
}

// get reads the key, or with prefix=1 every key under it (with an empty
// key: every key), or with from_key=1 every key from it on.
// Query: prefix, from_key, rev, limit, serializable, keys_only,
// count_only, encoding.
func (a *api) get(r *http.Request, q *query) (any, error) {
	g, err := readGetQuery(q)
	if err != nil {
		return nil, err
	}
	resp, err := a.node.Get(r.Context(), []byte(r.PathValue("key")), g.options()...)
	if err != nil {
		return nil, err
	}
	return getJSON(resp, g.enc, !g.keysOnly), nil
}

func getJSON(resp *kvstore.GetResponse, enc encoding, withValues bool) *getResponse {
	return &getResponse{Header: headerJSON(resp.Header), KVs: enc.kvs(resp.KVs, withValues), Count: resp.Count, More: resp.More}
}

// delete deletes the key, or a range as get selects one.
// Query: prefix, from_key, prev_kv, encoding.
func (a *api) delete(r *http.Request, q *query) (any, error) {
	prefix, fromKey := q.flag("prefix"), q.flag("from_key")
	prevKV := q.flag("prev_kv")
	enc := q.encoding()
	if err := q.done(); err != nil {
		return nil, err
	}
	var opts []kvstore.OpOption
	if prefix {
		opts = append(opts, kvstore.WithPrefix())
	}
	if fromKey {
		opts = append(opts, kvstore.WithFromKey())
	}
	if prevKV {
		opts = append(opts, kvstore.WithPrevKV())
	}
	resp, err := a.node.Delete(r.Context(), []byte(r.PathValue("key")), opts...)
	if err != nil {
		return nil, err
	}
	return deleteJSON(resp, enc), nil
}

func deleteJSON(resp *kvstore.DeleteResponse, enc encoding) *deleteResponse {
	out := &deleteResponse{Header: headerJSON(resp.Header), Deleted: resp.Deleted}
	if len(resp.PrevKVs) > 0 {
		out.PrevKVs = enc.kvs(resp.PrevKVs, true)
	}
	return out
}

// compactRequest is the body of POST /v1/compact.
type compactRequest struct {
	Revision int64 `json:"revision"`
	// Physical waits until this node has freed the compacted history.
	Physical bool `json:"physical"`
}

// compactResponse answers POST /v1/compact.
type compactResponse struct {
	Header jsonHeader `json:"header"`
}

// compact discards the history before the revision, on every member.
func (a *api) compact(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	var req compactRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	var opts []kvstore.CompactOption
	if req.Physical {
		opts = append(opts, kvstore.WithCompactPhysical())
	}
	resp, err := a.node.Compact(r.Context(), req.Revision, opts...)
	if err != nil {
		return nil, err
	}
	return &compactResponse{Header: headerJSON(resp.Header)}, nil
}
