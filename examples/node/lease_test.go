package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// eventually polls cond every 10ms of (virtual) time until it holds, and
// fails the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		var grant leaseResponse
		body := s.call("POST", "/v1/lease", `{"ttl":5}`, http.StatusOK, &grant)
		if grant.ID <= 0 || grant.TTL != 5 || grant.Header.Revision == 0 {
			t.Fatalf("grant: %s", body)
		}
		if want := fmt.Sprintf(`"id":"%d"`, grant.ID); !strings.Contains(string(body), want) {
			t.Fatalf("lease ID not a decimal string: %s", body)
		}
		lease := fmt.Sprint("/v1/lease/", grant.ID)
		s.call("PUT", fmt.Sprint("/v1/kv/session?lease=", grant.ID), "alive", http.StatusOK, nil)

		var get getResponse
		s.call("GET", "/v1/kv/session", "", http.StatusOK, &get)
		if get.KVs[0].Lease != grant.ID {
			t.Fatalf("key's lease %d, want %d", get.KVs[0].Lease, grant.ID)
		}
		var ttl leaseTTLResponse
		s.call("GET", lease+"?keys=1", "", http.StatusOK, &ttl)
		if ttl.ID != grant.ID || ttl.GrantedTTL != 5 || ttl.TTL <= 0 || ttl.TTL > 5 || len(ttl.Keys) != 1 || str(ttl.Keys[0].Key) != "session" {
			t.Fatalf("time to live: %+v", ttl)
		}
		s.call("GET", lease, "", http.StatusOK, &ttl)
		if ttl.Keys != nil {
			t.Fatalf("keys without keys=1: %+v", ttl)
		}
		var list leaseListResponse
		s.call("GET", "/v1/lease", "", http.StatusOK, &list)
		if len(list.IDs) != 1 || list.IDs[0] != grant.ID {
			t.Fatalf("leases: %+v", list)
		}

		// Kept alive past its TTL, the lease and its key live on.
		for range 4 {
			time.Sleep(3 * time.Second)
			var ka leaseResponse
			s.call("POST", lease+"/keepalive", "", http.StatusOK, &ka)
			if ka.ID != grant.ID || ka.TTL != 5 {
				t.Fatalf("keep-alive: %+v", ka)
			}
		}
		s.call("GET", "/v1/kv/session", "", http.StatusOK, &get)
		if get.Count != 1 {
			t.Fatal("key of a lease kept alive is gone")
		}
		// Left alone, it expires and takes the key along.
		eventually(t, 10*time.Second, "the lease to expire", func() bool {
			s.call("GET", "/v1/kv/session", "", http.StatusOK, &get)
			return get.Count == 0
		})
		s.callError("GET", lease, "", http.StatusNotFound, "lease_not_found")
		s.callError("POST", lease+"/keepalive", "", http.StatusNotFound, "lease_not_found")

		// A chosen ID; revoke.
		s.call("POST", "/v1/lease", `{"ttl":60,"id":"77"}`, http.StatusOK, &grant)
		if grant.ID != 77 || grant.TTL != 60 {
			t.Fatalf("grant with ID: %+v", grant)
		}
		s.callError("POST", "/v1/lease", `{"ttl":60,"id":77}`, http.StatusConflict, "lease_exists")
		s.call("PUT", "/v1/kv/owned?lease=77", "x", http.StatusOK, nil)
		var revoke leaseRevokeResponse
		s.call("DELETE", "/v1/lease/77", "", http.StatusOK, &revoke)
		s.call("GET", "/v1/kv/owned", "", http.StatusOK, &get)
		if get.Count != 0 || revoke.Header.Revision != get.Header.Revision {
			t.Fatalf("revoke left the key, or the revision moved: %+v %+v", revoke, get)
		}
		s.callError("DELETE", "/v1/lease/77", "", http.StatusNotFound, "lease_not_found")
	})
}

// TestLeaseGrantBelowMinimum: a TTL of zero or below is raised to the
// cluster's minimum, as the Go API and etcd do (SEMANTICS.md rule 18), not
// refused; a missing TTL is invalid_ttl.
func TestLeaseGrantBelowMinimum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		var one leaseResponse
		s.call("POST", "/v1/lease", `{"ttl":1}`, http.StatusOK, &one)
		for _, ttl := range []string{"0", "-1", "-9000"} {
			var grant leaseResponse
			s.call("POST", "/v1/lease", `{"ttl":`+ttl+`}`, http.StatusOK, &grant)
			if grant.ID <= 0 || grant.TTL < 1 || grant.TTL != one.TTL {
				t.Fatalf("ttl %s: %+v, want the minimum %d", ttl, grant, one.TTL)
			}
		}
		s.callError("POST", "/v1/lease", `{}`, http.StatusBadRequest, "invalid_ttl")
		s.callError("POST", "/v1/lease", `{"ttl":null}`, http.StatusBadRequest, "invalid_ttl")
	})
}

// TestLeaseGrantReportsRaisedTTL: with raft's default 1 s election
// timeout the minimum TTL is 2 s, as etcd's; a grant of 1 s answers the
// 2 s it granted, and the lease keeps them.
func TestLeaseGrantReportsRaisedTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{},
			kvtest.WithNodeOptions(kvstore.WithRaftTiming(time.Second, time.Second, 500*time.Millisecond, 0)))
		var grant leaseResponse
		s.call("POST", "/v1/lease", `{"ttl":1}`, http.StatusOK, &grant)
		if grant.TTL != 2 {
			t.Fatalf("grant of ttl 1: %+v, want ttl 2", grant)
		}
		var ttl leaseTTLResponse
		s.call("GET", fmt.Sprint("/v1/lease/", grant.ID), "", http.StatusOK, &ttl)
		if ttl.GrantedTTL != 2 || ttl.TTL != 2 {
			t.Fatalf("time to live: %+v, want granted_ttl 2, ttl 2", ttl)
		}
		s.call("POST", "/v1/lease", `{"ttl":3}`, http.StatusOK, &grant)
		if grant.TTL != 3 {
			t.Fatalf("grant of ttl 3: %+v, want ttl 3", grant)
		}
	})
}

func TestLeaseErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		cases := []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"POST", "/v1/lease", `{}`, 400, "invalid_ttl"},
			{"POST", "/v1/lease", `{"ttl":"5"}`, 400, "bad_request"},
			{"POST", "/v1/lease", `{"ttl":5,"id":"-3"}`, 400, "invalid_lease_id"},
			{"POST", "/v1/lease", `{"ttl":99999999999}`, 400, "ttl_too_large"},
			{"POST", "/v1/lease?ttl=5", `{"ttl":5}`, 400, "bad_request"},
			{"GET", "/v1/lease/abc", "", 400, "invalid_lease_id"},
			{"GET", "/v1/lease/0", "", 400, "invalid_lease_id"},
			{"GET", "/v1/lease/-5", "", 400, "invalid_lease_id"},
			{"GET", "/v1/lease/5?keys=maybe", "", 400, "bad_request"},
			{"GET", "/v1/lease/5", "", 404, "lease_not_found"},
			{"POST", "/v1/lease/5/keepalive", "", 404, "lease_not_found"},
			{"DELETE", "/v1/lease/5", "", 404, "lease_not_found"},
			{"DELETE", "/v1/lease/x", "", 400, "invalid_lease_id"},
		}
		for _, tc := range cases {
			s.callError(tc.method, tc.path, tc.body, tc.status, tc.code)
		}
		var list leaseListResponse
		body := s.call("GET", "/v1/lease", "", http.StatusOK, &list)
		if len(list.IDs) != 0 || !strings.Contains(string(body), `"ids":[]`) {
			t.Fatalf("failed grants left leases: %s", body)
		}
	})
}
