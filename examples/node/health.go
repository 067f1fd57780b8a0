package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/kvstore/kvstore"
)

// The cluster endpoints: GET /v1/status, GET /v1/hash, GET /v1/members and
// GET /healthz.

// statusResponse is kvstore.Status in JSON: this node's view, local only.
type statusResponse struct {
	ID              string `json:"id"`
	LeaderID        string `json:"leader_id"`
	IsLeader        bool   `json:"is_leader"`
	RaftState       string `json:"raft_state"`
	RaftTerm        uint64 `json:"raft_term"`
	CommitIndex     uint64 `json:"commit_index"`
	AppliedIndex    uint64 `json:"applied_index"`
	Revision        int64  `json:"revision"`
	CompactRevision int64  `json:"compact_revision"`
	Keys            int    `json:"keys"`
	StoreSize       int64  `json:"store_size"`
	// QuotaBytes is this member's quota, -1 when off; Alarms the active
	// alarms it has applied.
	QuotaBytes int64       `json:"quota_bytes"`
	Alarms     []jsonAlarm `json:"alarms"`
}

func (a *api) status(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	s := a.node.Status()
	return &statusResponse{
		ID: s.ID, LeaderID: s.LeaderID, IsLeader: s.IsLeader, RaftState: s.RaftState, RaftTerm: s.RaftTerm,
		CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, Revision: s.Revision,
		CompactRevision: s.CompactRevision, Keys: s.Keys, StoreSize: s.StoreSize,
		QuotaBytes: s.QuotaBytes, Alarms: alarmsJSON(s.Alarms),
	}, nil
}

// hashResponse answers GET /v1/hash: kvstore.HashKVResponse in JSON.
type hashResponse struct {
	// Header.Revision is the store's current revision, which may be past
	// the revision hashed.
	Header jsonHeader `json:"header"`
	// Revision is the revision hashed: the one asked for, or the current
	// one.
	Revision        int64  `json:"revision"`
	Hash            uint32 `json:"hash"`
	CompactRevision int64  `json:"compact_revision"`
}

// hash answers a hash of this node's store at a revision (Node.HashKV, like
// etcd's HashKV): members that applied the same log agree on it, so
// comparing their hashes at one revision checks that they hold the same
// data. It reads local state only, like /v1/status. Query: rev (default
// the current revision).
func (a *api) hash(r *http.Request, q *query) (any, error) {
	rev := q.int("rev")
	if err := q.done(); err != nil {
		return nil, err
	}
	if rev == 0 {
		rev = a.node.Status().Revision
	}
	resp, err := a.node.HashKV(rev)
	if err != nil {
		return nil, err
	}
	return &hashResponse{Header: headerJSON(resp.Header), Revision: rev, Hash: resp.Hash, CompactRevision: resp.CompactRevision}, nil
}

// membersResponse answers GET /v1/members: the configuration in this
// node's log, which may not be committed yet.
type membersResponse struct {
	Members []memberJSON `json:"members"`
}

type memberJSON struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Learner bool   `json:"learner"`
}

func (a *api) members(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	ms, err := a.node.Members(r.Context())
	if err != nil {
		return nil, err
	}
	out := &membersResponse{Members: make([]memberJSON, len(ms))}
	for i, m := range ms {
		out.Members[i] = memberJSON{ID: m.ID, Address: m.Address, Learner: m.Learner}
	}
	return out, nil
}

// removeMember removes a member from the cluster (DELETE
// /v1/members/{id}); the removed member's process exits. It answers the
// members that remain.
func (a *api) removeMember(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	if err := a.node.RemoveMember(r.Context(), r.PathValue("id")); err != nil {
		return nil, err
	}
	return a.members(r, q)
}

// healthKey is the key /healthz reads; any key does, it need not exist.
const healthKey = "/healthz"

// healthz answers 200 "ok" when this node can serve linearizable requests
// now, else 503 with the reason:
//
//  1. it knows a leader (Status().LeaderID); and
//  2. a linearizable read of one key, count only, succeeds within
//     healthTimeout.
//
// The read is the check that matters: it is the path every client request
// takes, and it needs exactly what a healthy member has — a leader that
// still holds a quorum (the read-index round confirms leadership with a
// heartbeat to a majority, or, on a follower, asks the leader, which does),
// and this node's state machine caught up to the leader's commit index.
// Comparing Status's AppliedIndex with CommitIndex was the alternative, but
// both are local: a member cut off from the others keeps the commit index
// it last heard, so it would look caught up while it cannot serve; and
// raft's no-op and barrier entries never reach the state machine, so a
// healthy node's gap is not even zero. The cost is one read-index round per
// check, shared with concurrent reads.
func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > 0 {
		a.writeError(w, r, fmt.Errorf("%w: /healthz takes no query parameters", errBadRequest))
		return
	}
	if err := a.checkHealth(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, newErrorBody(err, "unhealthy"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (a *api) checkHealth(ctx context.Context) error {
	if a.node.Status().LeaderID == "" {
		return fmt.Errorf("%w: no leader", errUnhealthy)
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.healthTimeout)
	defer cancel()
	if _, err := a.node.Get(ctx, []byte(healthKey), kvstore.WithCountOnly()); err != nil {
		return fmt.Errorf("%w: linearizable read failed within %v: %w", errUnhealthy, a.opts.healthTimeout, err)
	}
	return nil
}

// The probes: GET /livez and GET /readyz, as etcd 3.6 serves them, over the
// node's LiveChecks and ReadyChecks (each run within healthTimeout), and
// GET /livez/{check} and /readyz/{check} for one check alone. A probe that
// passes answers 200 "ok\n"; with ?verbose, each check's line comes first
// ("[+]leader ok"). One that fails answers 503 with every check's line,
// the failed ones as "[-]name failed: reason". ?exclude=name skips a check
// (repeat it for several); excluding a check that does not exist is
// ignored, as etcd ignores it, so that probes survive a renamed check. No
// other query parameter is accepted.

// probe serves one probe over checks (a function: a node's checks are
// asked for at each request).
func (a *api) probe(name string, checks func() []kvstore.HealthCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := newQuery(r)
		_, verbose := q.string("verbose")
		q.read = append(q.read, "exclude") // may repeat, unlike the others
		if err := q.done(); err != nil {
			a.writeError(w, r, err)
			return
		}
		selected := checks()
		if one := r.PathValue("check"); one != "" {
			selected = slices.DeleteFunc(selected, func(c kvstore.HealthCheck) bool { return c.Name != one })
			if len(selected) == 0 {
				http.NotFound(w, r)
				return
			}
		}
		excluded := q.values["exclude"]
		selected = slices.DeleteFunc(selected, func(c kvstore.HealthCheck) bool { return slices.Contains(excluded, c.Name) })
		a.runProbe(w, r, name, selected, verbose)
	}
}

// runProbe runs checks, in order, and writes the answer.
func (a *api) runProbe(w http.ResponseWriter, r *http.Request, name string, checks []kvstore.HealthCheck, verbose bool) {
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.healthTimeout)
	defer cancel()
	var lines strings.Builder
	failed := false
	for _, c := range checks {
		if err := c.Check(ctx); err != nil {
			failed = true
			fmt.Fprintf(&lines, "[-]%s failed: %s\n", c.Name, clientMessage(err))
			continue
		}
		fmt.Fprintf(&lines, "[+]%s ok\n", c.Name)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		a.opts.logger.Warn("/"+name+" check failed", "checks", lines.String())
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(lines.String()))
		return
	}
	if verbose {
		w.Write([]byte(lines.String()))
	}
	w.Write([]byte("ok\n"))
}
