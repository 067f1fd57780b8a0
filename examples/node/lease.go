package main

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/kvstore/kvstore"
)

// The lease endpoints. A lease ID is a decimal integer in the path and a
// decimal string in JSON (encoding.go says why).

// leaseGrantRequest is the body of POST /v1/lease.
type leaseGrantRequest struct {
	// TTL in seconds, required (errInvalidTTL); below the cluster's
	// minimum (zero and negative ones included) it is raised to it, as
	// etcd does, and the response says the TTL granted.
	TTL *int64 `json:"ttl"`
	// ID asks for this lease ID instead of one chosen by the cluster.
	ID leaseID `json:"id"`
}

// leaseResponse answers grant and keep-alive: the lease and its full TTL,
// which for a grant is the TTL granted: the one asked for, or the
// cluster's minimum if that is more (SEMANTICS.md rule 18).
type leaseResponse struct {
	Header jsonHeader `json:"header"`
	ID     leaseID    `json:"id"`
	TTL    int64      `json:"ttl"`
}

// leaseTTLResponse answers GET /v1/lease/{id}.
type leaseTTLResponse struct {
	Header jsonHeader `json:"header"`
	ID     leaseID    `json:"id"`
	// TTL is the remaining TTL in seconds, GrantedTTL the one granted.
	TTL        int64 `json:"ttl"`
	GrantedTTL int64 `json:"granted_ttl"`
	// Keys are the lease's keys, with keys=1.
	Keys []*jsonKey `json:"keys,omitempty"`
}

// jsonKey is a bare key in JSON (encoding.go).
type jsonKey struct {
	Key       *string `json:"key,omitempty"`
	KeyBase64 *string `json:"key_base64,omitempty"`
}

// leaseListResponse answers GET /v1/lease.
type leaseListResponse struct {
	Header jsonHeader `json:"header"`
	IDs    []leaseID  `json:"ids"`
}

// leaseRevokeResponse answers DELETE /v1/lease/{id}.
type leaseRevokeResponse struct {
	Header jsonHeader `json:"header"`
}

func (a *api) leaseGrant(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	var req leaseGrantRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if req.TTL == nil {
		return nil, fmt.Errorf("%w: ttl is required (seconds)", errInvalidTTL)
	}
	if req.ID < 0 {
		// This API names leases by positive IDs in its paths
		// (pathLeaseID), so it grants none it could not name; the node
		// itself grants negative IDs, as etcd does.
		return nil, fmt.Errorf("%w: lease ID %d: want a positive decimal integer", kvstore.ErrInvalidLeaseID, req.ID)
	}
	var opts []kvstore.LeaseOption
	if req.ID != 0 {
		opts = append(opts, kvstore.WithLeaseID(int64(req.ID)))
	}
	resp, err := a.node.Grant(r.Context(), *req.TTL, opts...)
	if err != nil {
		return nil, err
	}
	return &leaseResponse{Header: headerJSON(resp.Header), ID: leaseID(resp.ID), TTL: resp.TTL}, nil
}

func (a *api) leaseList(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	resp, err := a.node.Leases(r.Context())
	if err != nil {
		return nil, err
	}
	out := &leaseListResponse{Header: headerJSON(resp.Header), IDs: make([]leaseID, len(resp.IDs))}
	for i, id := range resp.IDs {
		out.IDs[i] = leaseID(id)
	}
	return out, nil
}

// leaseTimeToLive reports a lease. Query: keys, encoding. An unknown,
// revoked or expired lease is 404 (kvstore answers TTL -1, as etcd).
func (a *api) leaseTimeToLive(r *http.Request, q *query) (any, error) {
	withKeys := q.flag("keys")
	enc := q.encoding()
	id, err := pathLeaseID(r, q)
	if err != nil {
		return nil, err
	}
	resp, err := a.node.TimeToLive(r.Context(), id, withKeys)
	if err != nil {
		return nil, err
	}
	if resp.TTL < 0 {
		return nil, fmt.Errorf("%w: %d", kvstore.ErrLeaseNotFound, id)
	}
	out := &leaseTTLResponse{Header: headerJSON(resp.Header), ID: leaseID(id), TTL: resp.TTL, GrantedTTL: resp.GrantedTTL}
	for _, k := range resp.Keys {
		var jk jsonKey
		jk.Key, jk.KeyBase64 = enc.bytes(k)
		out.Keys = append(out.Keys, &jk)
	}
	return out, nil
}

// leaseKeepAlive renews a lease once: it has its full TTL again.
func (a *api) leaseKeepAlive(r *http.Request, q *query) (any, error) {
	id, err := pathLeaseID(r, q)
	if err != nil {
		return nil, err
	}
	resp, err := a.node.KeepAliveOnce(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return &leaseResponse{Header: headerJSON(resp.Header), ID: leaseID(resp.ID), TTL: resp.TTL}, nil
}

// leaseRevoke ends a lease and deletes its keys.
func (a *api) leaseRevoke(r *http.Request, q *query) (any, error) {
	id, err := pathLeaseID(r, q)
	if err != nil {
		return nil, err
	}
	resp, err := a.node.Revoke(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return &leaseRevokeResponse{Header: headerJSON(resp.Header)}, nil
}

// pathLeaseID reads the {id} of the path, a positive decimal integer, and
// finishes q.
func pathLeaseID(r *http.Request, q *query) (int64, error) {
	if err := q.done(); err != nil {
		return 0, err
	}
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: lease ID %q: want a positive decimal integer", kvstore.ErrInvalidLeaseID, s)
	}
	return id, nil
}
