package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/kvstore/kvstore"
)

// POST /v1/txn: etcd's transaction (compare-and-swap and more) as JSON:
//
//	{"compare": [{"key": "k", "target": "value", "result": "=", "value": "v1"}],
//	 "success": [{"put": {"key": "k", "value": "v2"}}],
//	 "failure": [{"get": {"key": "k"}}]}
//
// If every compare holds the success ops run, else the failure ops, as one
// revision. The txn runs through kvstore's Txn builder, so its rules (and
// errors) are the library's: see kvstore.Node.Txn.

// txnRequest is a txn in JSON, also the body of a nested {"txn": ...} op.
type txnRequest struct {
	Compare []compareJSON `json:"compare"`
	Success []opJSON      `json:"success"`
	Failure []opJSON      `json:"failure"`
}

// compareJSON is one compare. Target is value, version, create, mod or
// lease (etcd's VALUE, VERSION, CREATE, MOD, LEASE are accepted too);
// result is =, !=, > or < (or EQUAL, NOT_EQUAL, GREATER, LESS). The
// operand is the field named after the target: value (or value_base64),
// version, create_revision, mod_revision or lease. With prefix it must
// hold for every key under key.
type compareJSON struct {
	Key            *string  `json:"key"`
	KeyBase64      *string  `json:"key_base64"`
	Prefix         bool     `json:"prefix"`
	Target         string   `json:"target"`
	Result         string   `json:"result"`
	Value          *string  `json:"value"`
	ValueBase64    *string  `json:"value_base64"`
	Version        *int64   `json:"version"`
	CreateRevision *int64   `json:"create_revision"`
	ModRevision    *int64   `json:"mod_revision"`
	Lease          *leaseID `json:"lease"`
}

// opJSON is one op: exactly one field set.
type opJSON struct {
	Put    *putOpJSON    `json:"put"`
	Get    *getOpJSON    `json:"get"`
	Delete *deleteOpJSON `json:"delete"`
	Txn    *txnRequest   `json:"txn"`
}

type putOpJSON struct {
	Key         *string `json:"key"`
	KeyBase64   *string `json:"key_base64"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
	Lease       leaseID `json:"lease"`
	PrevKV      bool    `json:"prev_kv"`
}

type getOpJSON struct {
	Key          *string `json:"key"`
	KeyBase64    *string `json:"key_base64"`
	Prefix       bool    `json:"prefix"`
	FromKey      bool    `json:"from_key"`
	Rev          int64   `json:"rev"`
	Limit        int64   `json:"limit"`
	Serializable bool    `json:"serializable"`
	KeysOnly     bool    `json:"keys_only"`
	CountOnly    bool    `json:"count_only"`
}

type deleteOpJSON struct {
	Key       *string `json:"key"`
	KeyBase64 *string `json:"key_base64"`
	Prefix    bool    `json:"prefix"`
	FromKey   bool    `json:"from_key"`
	PrevKV    bool    `json:"prev_kv"`
}

// txnResponse answers POST /v1/txn: responses answer the ops of the branch
// that ran, in order, each with the field of its op set.
type txnResponse struct {
	Header    jsonHeader       `json:"header"`
	Succeeded bool             `json:"succeeded"`
	Responses []opResponseJSON `json:"responses"`
}

type opResponseJSON struct {
	Put    *putResponse    `json:"put,omitempty"`
	Get    *getResponse    `json:"get,omitempty"`
	Delete *deleteResponse `json:"delete,omitempty"`
	Txn    *txnResponse    `json:"txn,omitempty"`
}

// txn runs a transaction. Query: encoding.
func (a *api) txn(r *http.Request, q *query) (any, error) {
	enc := q.encoding()
	if err := q.done(); err != nil {
		return nil, err
	}
	var req txnRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	cmps, then, els, err := req.build("")
	if err != nil {
		return nil, err
	}
	resp, err := a.node.Txn(r.Context()).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return nil, err
	}
	return txnJSON(resp, &req, enc), nil
}

// build converts the txn; path prefixes error messages ("success[2].txn.").
func (t *txnRequest) build(path string) (cmps []kvstore.Cmp, then, els []kvstore.Op, err error) {
	for i := range t.Compare {
		c, err := t.Compare[i].build()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %scompare[%d]: %w", errBadRequest, path, i, err)
		}
		cmps = append(cmps, c)
	}
	if then, err = buildOps(path+"success", t.Success); err != nil {
		return nil, nil, nil, err
	}
	if els, err = buildOps(path+"failure", t.Failure); err != nil {
		return nil, nil, nil, err
	}
	return cmps, then, els, nil
}

func buildOps(path string, ops []opJSON) ([]kvstore.Op, error) {
	var out []kvstore.Op
	for i := range ops {
		op, err := ops[i].build(fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, nil
}

// compareTarget maps a target's JSON name (any case) to the name of its
// operand field and its kvstore target.
func compareTarget(name string) (operand string, target func([]byte) kvstore.Cmp, ok bool) {
	switch strings.ToLower(name) {
	case "value":
		return "value", kvstore.Value, true
	case "version":
		return "version", kvstore.Version, true
	case "create", "create_revision":
		return "create_revision", kvstore.CreateRevision, true
	case "mod", "mod_revision":
		return "mod_revision", kvstore.ModRevision, true
	case "lease":
		return "lease", kvstore.LeaseValue, true
	}
	return "", nil, false
}

// compareResult maps a result's JSON name (any case) to kvstore.Compare's.
func compareResult(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "=", "equal":
		return "=", true
	case "!=", "not_equal":
		return "!=", true
	case ">", "greater":
		return ">", true
	case "<", "less":
		return "<", true
	}
	return "", false
}

func (c *compareJSON) build() (kvstore.Cmp, error) {
	key, ok, err := requestBytes("key", c.Key, c.KeyBase64)
	if err != nil {
		return kvstore.Cmp{}, err
	} else if !ok {
		return kvstore.Cmp{}, fmt.Errorf("no key")
	}
	operandField, target, ok := compareTarget(c.Target)
	if !ok {
		return kvstore.Cmp{}, fmt.Errorf("target %q: want value, version, create, mod or lease", c.Target)
	}
	result, ok := compareResult(c.Result)
	if !ok {
		return kvstore.Cmp{}, fmt.Errorf("result %q: want =, !=, > or <", c.Result)
	}
	value, hasValue, err := requestBytes("value", c.Value, c.ValueBase64)
	if err != nil {
		return kvstore.Cmp{}, err
	}
	operands := map[string]any{}
	if hasValue {
		operands["value"] = value
	}
	if c.Version != nil {
		operands["version"] = *c.Version
	}
	if c.CreateRevision != nil {
		operands["create_revision"] = *c.CreateRevision
	}
	if c.ModRevision != nil {
		operands["mod_revision"] = *c.ModRevision
	}
	if c.Lease != nil {
		operands["lease"] = int64(*c.Lease)
	}
	operand, ok := operands[operandField]
	if !ok || len(operands) != 1 {
		return kvstore.Cmp{}, fmt.Errorf("target %s takes its operand in %q, and no other operand field", c.Target, operandField)
	}
	if c.Prefix && len(key) == 0 {
		// Every key, as an empty prefix selects in GET; [\x00, \x00) is
		// etcd's spelling of it.
		return kvstore.Compare(target([]byte{0}), result, operand).WithRange([]byte{0}), nil
	}
	cmp := kvstore.Compare(target(key), result, operand)
	if c.Prefix {
		cmp = cmp.WithPrefix()
	}
	return cmp, nil
}

func (o *opJSON) build(path string) (kvstore.Op, error) {
	set := 0
	for _, p := range []bool{o.Put != nil, o.Get != nil, o.Delete != nil, o.Txn != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return kvstore.Op{}, fmt.Errorf("%w: %s: an op holds exactly one of put, get, delete and txn", errBadRequest, path)
	}
	fail := func(err error) (kvstore.Op, error) {
		return kvstore.Op{}, fmt.Errorf("%w: %s: %w", errBadRequest, path, err)
	}
	key := func(text, b64 *string) ([]byte, error) {
		k, ok, err := requestBytes("key", text, b64)
		if err == nil && !ok {
			err = fmt.Errorf("no key")
		}
		return k, err
	}
	switch {
	case o.Put != nil:
		p := o.Put
		k, err := key(p.Key, p.KeyBase64)
		if err != nil {
			return fail(err)
		}
		v, _, err := requestBytes("value", p.Value, p.ValueBase64)
		if err != nil {
			return fail(err)
		}
		var opts []kvstore.OpOption
		if p.Lease != 0 {
			opts = append(opts, kvstore.WithLease(int64(p.Lease)))
		}
		if p.PrevKV {
			opts = append(opts, kvstore.WithPrevKV())
		}
		return kvstore.OpPut(k, v, opts...), nil
	case o.Get != nil:
		g := o.Get
		k, err := key(g.Key, g.KeyBase64)
		if err != nil {
			return fail(err)
		}
		if g.Rev < 0 || g.Limit < 0 {
			return fail(fmt.Errorf("negative rev or limit"))
		}
		q := getQuery{prefix: g.Prefix, fromKey: g.FromKey, rev: g.Rev, limit: g.Limit,
			serializable: g.Serializable, keysOnly: g.KeysOnly, countOnly: g.CountOnly}
		return kvstore.OpGet(k, q.options()...), nil
	case o.Delete != nil:
		d := o.Delete
		k, err := key(d.Key, d.KeyBase64)
		if err != nil {
			return fail(err)
		}
		var opts []kvstore.OpOption
		if d.Prefix {
			opts = append(opts, kvstore.WithPrefix())
		}
		if d.FromKey {
			opts = append(opts, kvstore.WithFromKey())
		}
		if d.PrevKV {
			opts = append(opts, kvstore.WithPrevKV())
		}
		return kvstore.OpDelete(k, opts...), nil
	}
	cmps, then, els, err := o.Txn.build(path + ".txn.")
	if err != nil {
		return kvstore.Op{}, err
	}
	return kvstore.OpTxn(cmps, then, els), nil
}

// txnJSON converts resp; req is the txn it answers, which says which gets
// were keys_only (their values are left out, as in GET).
func txnJSON(resp *kvstore.TxnResponse, req *txnRequest, enc encoding) *txnResponse {
	out := &txnResponse{Header: headerJSON(resp.Header), Succeeded: resp.Succeeded, Responses: make([]opResponseJSON, len(resp.Responses))}
	ops := req.Failure
	if resp.Succeeded {
		ops = req.Success
	}
	for i, r := range resp.Responses {
		var op opJSON
		if i < len(ops) {
			op = ops[i]
		}
		o := &out.Responses[i]
		switch {
		case r.Put != nil:
			o.Put = putJSON(r.Put, enc)
		case r.Get != nil:
			o.Get = getJSON(r.Get, enc, op.Get == nil || !op.Get.KeysOnly)
		case r.Delete != nil:
			o.Delete = deleteJSON(r.Delete, enc)
		case r.Txn != nil:
			nested := &txnRequest{}
			if op.Txn != nil {
				nested = op.Txn
			}
			o.Txn = txnJSON(r.Txn, nested, enc)
		}
	}
	return out
}
