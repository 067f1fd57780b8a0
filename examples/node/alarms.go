package main

import (
	"net/http"

	"github.com/kvstore/kvstore"
)

// The alarms API, as etcdctl's "alarm list" and "alarm disarm".

// jsonAlarm is one active alarm: the member that raised it and its kind,
// etcd's name ("NOSPACE", "CORRUPT").
type jsonAlarm struct {
	MemberID string `json:"member_id"`
	Alarm    string `json:"alarm"`
}

// alarmsResponse answers GET /v1/alarms and POST /v1/alarms/disarm: the
// alarms active once the request is done.
type alarmsResponse struct {
	Alarms []jsonAlarm `json:"alarms"`
}

func alarmsJSON(list []kvstore.Alarm) []jsonAlarm {
	out := make([]jsonAlarm, 0, len(list))
	for _, a := range list {
		out = append(out, jsonAlarm{MemberID: a.MemberID, Alarm: a.Kind.String()})
	}
	return out
}

// alarms lists the cluster's active alarms, linearizably (Node.Alarms).
func (a *api) alarms(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	list, err := a.node.Alarms(r.Context())
	if err != nil {
		return nil, err
	}
	return &alarmsResponse{Alarms: alarmsJSON(list)}, nil
}

// disarmRequest is the body of POST /v1/alarms/disarm: the alarm to clear,
// or, with both fields empty ({}), every active alarm, as etcdctl alarm
// disarm does.
type disarmRequest struct {
	MemberID string `json:"member_id"`
	Alarm    string `json:"alarm"`
}

// disarm clears one alarm or all (Node.DisarmAlarm). A NOSPACE alarm
// cleared while the store is still over this member's quota is raised
// again: the answer is then 507 database_space_exceeded.
func (a *api) disarm(r *http.Request, q *query) (any, error) {
	if err := q.done(); err != nil {
		return nil, err
	}
	var req disarmRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	var targets []kvstore.Alarm
	if req.MemberID == "" && req.Alarm == "" {
		var err error
		if targets, err = a.node.Alarms(r.Context()); err != nil {
			return nil, err
		}
	} else {
		kind, err := kvstore.ParseAlarmKind(req.Alarm)
		if err != nil {
			return nil, err
		}
		targets = []kvstore.Alarm{{MemberID: req.MemberID, Kind: kind}}
	}
	for _, t := range targets {
		if err := a.node.DisarmAlarm(r.Context(), t.MemberID, t.Kind); err != nil {
			return nil, err
		}
	}
	list, err := a.node.Alarms(r.Context())
	if err != nil {
		return nil, err
	}
	return &alarmsResponse{Alarms: alarmsJSON(list)}, nil
}
