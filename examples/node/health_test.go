package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
	"github.com/kvstore/kvstore/transport"
)

// healthy reads /healthz: true for 200 "ok", false for 503; anything else
// fails the test. It returns the 503's reason.
func (s *testServer) healthy() (bool, string) {
	s.t.Helper()
	status, body := s.do("GET", "/healthz", "")
	switch {
	case status == http.StatusOK && string(body) == "ok\n":
		return true, ""
	case status == http.StatusServiceUnavailable && strings.Contains(string(body), `"code":"unhealthy"`):
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil {
			s.t.Fatalf("/healthz: %s: %v", body, err)
		}
		checkClientMessage(s.t, e.Error)
		return false, string(body)
	}
	s.t.Fatalf("/healthz: %d %s", status, body)
	return false, ""
}

// TestHealthzIsolated checks /healthz on each member of a 3-node cluster,
// then on a member cut off from the other two: it goes 503 (whether it led
// or followed), and 200 again once the network heals.
func TestHealthzIsolated(t *testing.T) {
	for _, isolate := range []string{"leader", "follower"} {
		t.Run(isolate, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, 3)
				leader := c.WaitLeader()
				c.WaitApplied()
				servers := make([]*testServer, 3)
				for i := range servers {
					servers[i] = serve(t, c.Node(i), apiOptions{})
					if ok, reason := servers[i].healthy(); !ok {
						t.Fatalf("member %d unhealthy in a healthy cluster: %s", i, reason)
					}
				}
				i := c.Index(leader)
				if isolate == "follower" {
					i = (i + 1) % 3
				}
				c.Isolate(i)
				var reason string
				eventually(t, time.Minute, "the isolated member to report unhealthy", func() bool {
					var ok bool
					ok, reason = servers[i].healthy()
					return !ok
				})
				t.Logf("isolated %s: %s", isolate, reason)
				// The other two elect a leader (if they lost theirs) and stay
				// healthy.
				for j := range servers {
					if j != i {
						eventually(t, time.Minute, "the majority to be healthy", func() bool {
							ok, _ := servers[j].healthy()
							return ok
						})
					}
				}
				c.Heal()
				eventually(t, time.Minute, "the healed member to report healthy", func() bool {
					ok, _ := servers[i].healthy()
					return ok
				})
			})
		})
	}
}

// TestHealthzNoLeader checks a node that belongs to no cluster yet (opened
// without bootstrap, waiting to be added): 503, no leader.
func TestHealthzNoLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, err := transport.NewNetwork().Join("lonely")
		if err != nil {
			t.Fatal(err)
		}
		n, err := kvstore.Open("", kvstore.WithID("lonely"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		s := serve(t, n, apiOptions{requestTimeout: time.Second})
		if ok, reason := s.healthy(); ok || !strings.Contains(reason, "no leader") {
			t.Fatalf("healthz of a node without a cluster: %v %s", ok, reason)
		}
		// Requests wait for a leader until their deadline: 503, retry later.
		s.callError("PUT", "/v1/kv/k", "v", http.StatusServiceUnavailable, "no_leader")
		s.callError("GET", "/v1/kv/k", "", http.StatusServiceUnavailable, "no_leader")
		// A serializable read needs no leader.
		var get getResponse
		s.call("GET", "/v1/kv/k?serializable=1", "", http.StatusOK, &get)
		if get.Count != 0 || get.Header.Revision != 1 {
			t.Fatalf("serializable read: %+v", get)
		}
		_, body := s.do("PUT", "/v1/kv/k", "v")
		t.Logf("PUT without a leader: %s", body)
	})
}

func TestStatusAndMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		c.WaitApplied()
		s := serve(t, leader, apiOptions{})
		s.call("PUT", "/v1/kv/k", "v", http.StatusOK, nil)
		var st statusResponse
		s.call("GET", "/v1/status", "", http.StatusOK, &st)
		if st.ID != leader.ID() || st.LeaderID != leader.ID() || !st.IsLeader || st.RaftState != "Leader" ||
			st.RaftTerm == 0 || st.CommitIndex == 0 || st.AppliedIndex == 0 || st.AppliedIndex > st.CommitIndex ||
			st.Revision != 2 || st.CompactRevision != 0 || st.Keys != 1 || st.StoreSize == 0 {
			t.Fatalf("status: %+v", st)
		}
		var ms membersResponse
		s.call("GET", "/v1/members", "", http.StatusOK, &ms)
		if len(ms.Members) != 3 {
			t.Fatalf("members: %+v", ms)
		}
		for i, m := range ms.Members {
			if m.ID != c.ID(i) || m.Address != c.Address(i) || m.Learner {
				t.Errorf("member %d: %+v", i, m)
			}
		}
		s.callError("GET", "/v1/status?verbose=1", "", http.StatusBadRequest, "bad_request")
		s.callError("GET", "/healthz?x=1", "", http.StatusBadRequest, "bad_request")

		// A learner shows as one.
		i := c.AddNode()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := leader.AddLearner(ctx, c.ID(i), c.Address(i)); err != nil {
			t.Fatal(err)
		}
		s.call("GET", "/v1/members", "", http.StatusOK, &ms)
		if len(ms.Members) != 4 || !ms.Members[3].Learner || ms.Members[3].ID != c.ID(i) {
			t.Fatalf("members with a learner: %+v", ms)
		}
		c.WaitApplied()
	})
}

// TestHash checks GET /v1/hash: the members of a cluster agree at every
// revision, the hash changes with the data, the default is the current
// revision, and revisions out of range get the read endpoints' errors.
func TestHash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		c.WaitLeader()
		c.WaitApplied()
		servers := make([]*testServer, 3)
		for i := range servers {
			servers[i] = serve(t, c.Node(i), apiOptions{})
		}
		for _, k := range []string{"a", "b", "c"} {
			servers[0].call("PUT", "/v1/kv/"+k, "v-"+k, http.StatusOK, nil)
		}
		c.WaitApplied()
		hashAt := func(s *testServer, path string) hashResponse {
			t.Helper()
			var h hashResponse
			s.call("GET", path, "", http.StatusOK, &h)
			return h
		}
		current := hashAt(servers[0], "/v1/hash")
		if current.Revision != 4 || current.Header.Revision != 4 || current.CompactRevision != 0 {
			t.Fatalf("hash at the current revision: %+v", current)
		}
		if at := hashAt(servers[0], "/v1/hash?rev=4"); at.Hash != current.Hash || at.Revision != 4 {
			t.Fatalf("hash at rev 4 %+v, at the current revision %+v", at, current)
		}
		earlier := hashAt(servers[0], "/v1/hash?rev=2")
		if earlier.Revision != 2 || earlier.Header.Revision != 4 || earlier.Hash == current.Hash {
			t.Fatalf("hash at rev 2 %+v, at rev 4 %+v", earlier, current)
		}
		for i, s := range servers[1:] {
			for _, want := range []hashResponse{earlier, current} {
				if got := hashAt(s, fmt.Sprint("/v1/hash?rev=", want.Revision)); got.Hash != want.Hash {
					t.Fatalf("member %d at rev %d: hash %x, member 0's %x", i+1, want.Revision, got.Hash, want.Hash)
				}
			}
		}
		s := servers[1]
		s.callError("GET", "/v1/hash?rev=5", "", http.StatusBadRequest, "future_revision")
		s.callError("GET", "/v1/hash?rev=x", "", http.StatusBadRequest, "bad_request")
		s.callError("GET", "/v1/hash?revision=2", "", http.StatusBadRequest, "bad_request")
		s.call("POST", "/v1/compact", `{"revision": 3}`, http.StatusOK, nil)
		c.WaitApplied()
		s.callError("GET", "/v1/hash?rev=2", "", http.StatusGone, "compacted")
		if after := hashAt(s, "/v1/hash?rev=4"); after.CompactRevision != 3 {
			t.Fatalf("hash after compacting at 3: %+v", after)
		}
	})
}

// TestWriteToIsolatedMember checks what a client hears from a member cut
// off from the others, leader or follower: never success, never 500, but
// "no leader", "outcome unknown" or "timeout" (503/504), each of which the
// README tells the client how to handle.
func TestWriteToIsolatedMember(t *testing.T) {
	for _, isolate := range []string{"leader", "follower"} {
		t.Run(isolate, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := kvtest.NewCluster(t, 3)
				leader := c.WaitLeader()
				c.WaitApplied()
				i := c.Index(leader)
				if isolate == "follower" {
					i = (i + 1) % 3
				}
				s := serve(t, c.Node(i), apiOptions{requestTimeout: 2 * time.Second})
				c.Isolate(i)
				for _, req := range []struct{ method, path, body string }{
					{"PUT", "/v1/kv/k", "v"},
					{"GET", "/v1/kv/k", ""},
					{"DELETE", "/v1/kv/k", ""},
					{"POST", "/v1/txn", `{"success":[{"put":{"key":"k","value":"v"}}]}`},
					{"POST", "/v1/lease", `{"ttl":10}`},
				} {
					status, body := s.do(req.method, req.path, req.body)
					var e errorBody
					if err := json.Unmarshal(body, &e); err != nil {
						t.Fatalf("%s %s: %d %s", req.method, req.path, status, body)
					}
					switch {
					case status == 503 && (e.Code == "no_leader" || e.Code == "outcome_unknown"):
					case status == 504 && e.Code == "timeout":
					default:
						t.Fatalf("%s %s on an isolated %s: %d %s", req.method, req.path, isolate, status, body)
					}
					t.Logf("%s %s: %d %s", req.method, req.path, status, e.Code)
				}
				// A serializable read is served locally all the same.
				s.call("GET", "/v1/kv/k?serializable=1", "", http.StatusOK, nil)
				c.Heal()
				c.WaitLeader()
			})
		})
	}
}

// TestProbes checks /livez and /readyz on a healthy member: "ok", the
// checks' lines with ?verbose, one check by its path, ?exclude, and the
// strict query.
func TestProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		c.WaitLeader()
		c.WaitApplied()
		s := serve(t, c.Followers()[0], apiOptions{})
		for path, want := range map[string]string{
			"/livez":                    "ok\n",
			"/livez?verbose":            "[+]serializable_read ok\nok\n",
			"/readyz":                   "ok\n",
			"/readyz?verbose":           "[+]leader ok\n[+]data_corruption ok\n[+]no_space ok\n[+]caught_up ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n",
			"/readyz/leader":            "ok\n",
			"/readyz/caught_up?verbose": "[+]caught_up ok\nok\n",
			"/readyz?verbose&exclude=linearizable_read&exclude=leader": "[+]data_corruption ok\n[+]no_space ok\n[+]caught_up ok\n[+]serializable_read ok\nok\n",
			"/readyz?verbose&exclude=no_such_check":                    "[+]leader ok\n[+]data_corruption ok\n[+]no_space ok\n[+]caught_up ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n",
		} {
			status, body := s.do("GET", path, "")
			if status != http.StatusOK || string(body) != want {
				t.Errorf("GET %s: %d %q, want 200 %q", path, status, body, want)
			}
		}
		if status, _ := s.do("GET", "/readyz/no_such_check", ""); status != http.StatusNotFound {
			t.Errorf("an unknown check's path: %d, want 404", status)
		}
		s.callError("GET", "/readyz?verbos", "", http.StatusBadRequest, "bad_request")
		if status, _ := s.do("POST", "/livez", ""); status != http.StatusMethodNotAllowed {
			t.Errorf("POST /livez: %d", status)
		}
	})
}

// TestProbesWithoutLeader checks a node that belongs to no cluster: alive,
// not ready, each failed check on a line of its own with its reason;
// excluding the failing checks leaves it ready.
func TestProbesWithoutLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, err := transport.NewNetwork().Join("lonely")
		if err != nil {
			t.Fatal(err)
		}
		n, err := kvstore.Open("", kvstore.WithID("lonely"), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		s := serve(t, n, apiOptions{})
		if status, body := s.do("GET", "/livez", ""); status != http.StatusOK || string(body) != "ok\n" {
			t.Fatalf("/livez without a leader: %d %q", status, body)
		}
		status, body := s.do("GET", "/readyz", "")
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if status != http.StatusServiceUnavailable || len(lines) != 6 ||
			!strings.HasPrefix(lines[0], "[-]leader failed: no leader") ||
			lines[1] != "[+]data_corruption ok" || lines[2] != "[+]no_space ok" ||
			!strings.HasPrefix(lines[3], "[-]caught_up failed: still applying the log") ||
			lines[4] != "[+]serializable_read ok" ||
			!strings.HasPrefix(lines[5], "[-]linearizable_read failed: ") {
			t.Fatalf("/readyz without a leader: %d\n%s", status, body)
		}
		for _, l := range lines {
			checkClientMessage(t, strings.TrimPrefix(l, "[-]"))
		}
		if status, body := s.do("GET", "/readyz?exclude=leader&exclude=caught_up&exclude=linearizable_read", ""); status != http.StatusOK || string(body) != "ok\n" {
			t.Fatalf("/readyz with the failing checks excluded: %d %q", status, body)
		}
	})
}

// TestReadyzIsolated checks that a member cut off from the others stops
// being ready but stays alive, and is ready again once healed.
func TestReadyzIsolated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		leader := c.WaitLeader()
		c.WaitApplied()
		i := c.Index(leader)
		s := serve(t, leader, apiOptions{})
		if status, _ := s.do("GET", "/readyz", ""); status != http.StatusOK {
			t.Fatalf("/readyz of a healthy leader: %d", status)
		}
		c.Isolate(i)
		eventually(t, time.Minute, "the isolated member not to be ready", func() bool {
			status, _ := s.do("GET", "/readyz", "")
			return status == http.StatusServiceUnavailable
		})
		if status, _ := s.do("GET", "/livez", ""); status != http.StatusOK {
			t.Fatalf("/livez of an isolated member: %d", status)
		}
		c.Heal()
		eventually(t, time.Minute, "the healed member to be ready", func() bool {
			status, _ := s.do("GET", "/readyz", "")
			return status == http.StatusOK
		})
	})
}
