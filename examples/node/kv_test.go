package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// startNode starts a one-node kvtest cluster, waits for its leader and
// serves its API.
func startNode(t *testing.T, opts apiOptions, clusterOpts ...kvtest.Option) (*kvtest.Cluster, *testServer) {
	t.Helper()
	c := kvtest.NewCluster(t, 1, clusterOpts...)
	return c, serve(t, c.WaitLeader(), opts)
}

// str reads an optional JSON string field, "<absent>" when it is.
func str(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

// keys lists the keys of kvs as text.
func keys(kvs []*jsonKV) string {
	var out []string
	for _, kv := range kvs {
		out = append(out, str(kv.Key))
	}
	return strings.Join(out, ",")
}

func TestPutGetDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		var put putResponse
		s.call("PUT", "/v1/kv/a", "1", http.StatusOK, &put)
		if put.Header.Revision != 2 || put.Header.MemberID != "n1" || put.Header.RaftTerm == 0 || put.PrevKV != nil {
			t.Fatalf("first put: %+v", put)
		}
		s.call("PUT", "/v1/kv/a/x", "2", http.StatusOK, nil)
		s.call("PUT", "/v1/kv/b", "3", http.StatusOK, nil)
		s.call("PUT", "/v1/kv/a?prev_kv=1", "4", http.StatusOK, &put)
		if put.Header.Revision != 5 || put.PrevKV == nil || str(put.PrevKV.Value) != "1" || put.PrevKV.Version != 1 {
			t.Fatalf("put with prev_kv: %+v", put)
		}

		var get getResponse
		s.call("GET", "/v1/kv/a", "", http.StatusOK, &get)
		if get.Count != 1 || len(get.KVs) != 1 || get.More || get.Header.Revision != 5 {
			t.Fatalf("get a: %+v", get)
		}
		if kv := get.KVs[0]; str(kv.Key) != "a" || str(kv.Value) != "4" || kv.CreateRevision != 2 || kv.ModRevision != 5 || kv.Version != 2 || kv.Lease != 0 {
			t.Fatalf("get a: kv %+v", kv)
		}
		// A missing key is no error: an empty list, as etcd answers.
		body := s.call("GET", "/v1/kv/missing", "", http.StatusOK, &get)
		if get.Count != 0 || len(get.KVs) != 0 || !strings.Contains(string(body), `"kvs":[]`) {
			t.Fatalf("get missing: %s", body)
		}
		s.call("GET", "/v1/kv/a?prefix=1", "", http.StatusOK, &get)
		if keys(get.KVs) != "a,a/x" || get.Count != 2 {
			t.Fatalf("get prefix a: %+v", get)
		}
		s.call("GET", "/v1/kv/?prefix", "", http.StatusOK, &get)
		if keys(get.KVs) != "a,a/x,b" {
			t.Fatalf("get every key: %s", keys(get.KVs))
		}
		s.call("GET", "/v1/kv/a/x?from_key=true", "", http.StatusOK, &get)
		if keys(get.KVs) != "a/x,b" {
			t.Fatalf("get from a/x: %s", keys(get.KVs))
		}
		s.call("GET", "/v1/kv/?prefix=1&limit=2", "", http.StatusOK, &get)
		if keys(get.KVs) != "a,a/x" || get.Count != 3 || !get.More {
			t.Fatalf("get limit 2: %+v", get)
		}
		s.call("GET", "/v1/kv/a?rev=2", "", http.StatusOK, &get)
		if str(get.KVs[0].Value) != "1" || get.Header.Revision != 5 {
			t.Fatalf("get at revision 2: %+v", get)
		}
		s.call("GET", "/v1/kv/a?serializable=1", "", http.StatusOK, &get)
		if str(get.KVs[0].Value) != "4" {
			t.Fatalf("serializable get: %+v", get.KVs[0])
		}
		s.call("GET", "/v1/kv/?prefix=1&keys_only=1", "", http.StatusOK, &get)
		if keys(get.KVs) != "a,a/x,b" || get.KVs[0].Value != nil || get.KVs[0].ValueBase64 != nil {
			t.Fatalf("keys only: %+v", get.KVs[0])
		}
		s.call("GET", "/v1/kv/?prefix=1&count_only=1", "", http.StatusOK, &get)
		if get.Count != 3 || len(get.KVs) != 0 {
			t.Fatalf("count only: %+v", get)
		}

		var del deleteResponse
		s.call("DELETE", "/v1/kv/a?prefix=1&prev_kv=1", "", http.StatusOK, &del)
		if del.Deleted != 2 || keys(del.PrevKVs) != "a,a/x" || str(del.PrevKVs[1].Value) != "2" || del.Header.Revision != 6 {
			t.Fatalf("delete prefix: %+v", del)
		}
		s.call("DELETE", "/v1/kv/nothing", "", http.StatusOK, &del)
		if del.Deleted != 0 || del.PrevKVs != nil || del.Header.Revision != 6 {
			t.Fatalf("delete of a missing key: %+v", del)
		}
		s.call("DELETE", "/v1/kv/?from_key=1", "", http.StatusOK, &del)
		if del.Deleted != 1 {
			t.Fatalf("delete from the first key: %+v", del)
		}
		s.call("GET", "/v1/kv/?prefix=1", "", http.StatusOK, &get)
		if get.Count != 0 || get.Header.Revision != 7 {
			t.Fatalf("after deletes: %+v", get)
		}
	})
}

// TestJSONShape pins the field names of a read, which the tests' decoding
// into the API's own types cannot catch.
func TestJSONShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		s.call("PUT", "/v1/kv/k", "v", http.StatusOK, nil)
		_, body := s.do("GET", "/v1/kv/k", "")
		got := string(body)
		head := `{"header":{"revision":2,"raft_term":`
		tail := `,"member_id":"n1"},"kvs":[{"key":"k","value":"v","create_revision":2,"mod_revision":2,"version":1}],"count":1,"more":false}` + "\n"
		if !strings.HasPrefix(got, head) || !strings.HasSuffix(got, tail) {
			t.Fatalf("GET body\n got %s\nwant %s<term>%s", got, head, tail)
		}
	})
}

// TestKeysAndValuesAsBytes checks the encoding rules of encoding.go: any
// byte in a key through percent-encoding, values verbatim, invalid UTF-8
// in the base64 fields, encoding=base64 for every field.
func TestKeysAndValuesAsBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		binary := "\x00\xff\xfe"
		cases := []struct{ path, key string }{
			{"/v1/kv/a%2F%2Fb", "a//b"},       // '//' would be cleaned by the router
			{"/v1/kv/%2Flead", "/lead"},       // a leading '/'
			{"/v1/kv/x%2F..%2Fy", "x/../y"},   // dot segments
			{"/v1/kv/sp%20ace", "sp ace"},     // escaped space
			{"/v1/kv/%00%ff", "\x00\xff"},     // not UTF-8
			{"/v1/kv/%C3%A9t%C3%A9", "été"},   // UTF-8
			{"/v1/kv/trailing/", "trailing/"}, // a trailing '/' is part of the key
		}
		for _, c := range cases {
			s.call("PUT", c.path, binary, http.StatusOK, nil)
		}
		var get getResponse
		s.call("GET", "/v1/kv/?prefix=1", "", http.StatusOK, &get)
		found := map[string]bool{}
		for _, kv := range get.KVs {
			k := str(kv.Key)
			if kv.KeyBase64 != nil {
				b, err := base64.StdEncoding.DecodeString(*kv.KeyBase64)
				if err != nil || kv.Key != nil {
					t.Fatalf("key fields %+v: %v", kv, err)
				}
				k = string(b)
			}
			found[k] = true
			if kv.Value != nil || str(kv.ValueBase64) != base64.StdEncoding.EncodeToString([]byte(binary)) {
				t.Fatalf("value of %q: %+v", k, kv)
			}
		}
		for _, c := range cases {
			if !found[c.key] {
				t.Errorf("key %q (from %s) not stored; have %v", c.key, c.path, found)
			}
		}

		s.call("PUT", "/v1/kv/text", "<héllo & \"you\">", http.StatusOK, nil)
		_, body := s.do("GET", "/v1/kv/text", "")
		if !strings.Contains(string(body), `"value":"<héllo & \"you\">"`) {
			t.Fatalf("text value not verbatim: %s", body)
		}
		s.call("GET", "/v1/kv/text?encoding=base64", "", http.StatusOK, &get)
		if kv := get.KVs[0]; kv.Key != nil || kv.Value != nil || str(kv.KeyBase64) != "dGV4dA==" ||
			str(kv.ValueBase64) != base64.StdEncoding.EncodeToString([]byte("<héllo & \"you\">")) {
			t.Fatalf("encoding=base64: %+v", kv)
		}
		s.call("PUT", "/v1/kv/empty", "", http.StatusOK, nil)
		_, body = s.do("GET", "/v1/kv/empty", "")
		if !strings.Contains(string(body), `"value":""`) {
			t.Fatalf("an empty value must be present and empty: %s", body)
		}
	})
}

// TestKVErrors checks that bad requests get their status and code, and
// change nothing.
func TestKVErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := startNode(t, apiOptions{maxBodyBytes: 1024},
			kvtest.WithNodeOptions(kvstore.WithMaxRequestBytes(512)))
		s.call("PUT", "/v1/kv/k", "v", http.StatusOK, nil)
		s.call("PUT", "/v1/kv/k", "v2", http.StatusOK, nil)
		if _, err := c.Node(0).Compact(t.Context(), 3); err != nil {
			t.Fatal(err)
		}
		rev := s.revision()
		cases := []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"PUT", "/v1/kv/", "v", 400, "empty_key"},
			{"GET", "/v1/kv/", "", 400, "empty_key"},
			{"DELETE", "/v1/kv/", "", 400, "empty_key"},
			{"PUT", "/v1/kv/k?perfix=1", "v", 400, "bad_request"},
			{"PUT", "/v1/kv/k?prev_kv=yes", "v", 400, "bad_request"},
			{"PUT", "/v1/kv/k?lease=-1", "v", 400, "bad_request"},
			{"PUT", "/v1/kv/k?lease=12&lease=13", "v", 400, "bad_request"},
			{"PUT", "/v1/kv/k?encoding=hex", "v", 400, "bad_request"},
			{"PUT", "/v1/kv/k?%zz", "v", 400, "bad_request"},
			{"PUT", "/v1/kv/k?lease=12345", "v", 404, "lease_not_found"},
			{"PUT", "/v1/kv/k", strings.Repeat("x", 600), 413, "request_too_large"},  // the node's limit
			{"PUT", "/v1/kv/k", strings.Repeat("x", 2000), 413, "request_too_large"}, // the body limit
			{"DELETE", "/v1/kv/k?rev=2", "", 400, "bad_request"},
			{"GET", "/v1/kv/k?rev=99", "", 400, "future_revision"},
			{"GET", "/v1/kv/k?rev=2", "", 410, "compacted"},
			{"GET", "/v1/kv/k?limit=x", "", 400, "bad_request"},
			{"GET", "/v1/kv/k?prefix=1&from_key=1", "", 400, "invalid_argument"},
			{"DELETE", "/v1/kv/k?prefix=1&from_key=1", "", 400, "invalid_argument"},
			{"POST", "/v1/compact", `{"revision":2}`, 410, "compacted"},
			{"POST", "/v1/compact", `{"revision":99}`, 400, "future_revision"},
			{"POST", "/v1/compact", `{"revision":"3"}`, 400, "bad_request"},
			{"POST", "/v1/compact", `{"rev":4}`, 400, "bad_request"},
			{"POST", "/v1/compact", ``, 400, "bad_request"},
			{"POST", "/v1/compact", `{"revision":4} {}`, 400, "bad_request"},
		}
		for _, tc := range cases {
			msg := s.callError(tc.method, tc.path, tc.body, tc.status, tc.code)
			t.Logf("%s %s: %d %s", tc.method, tc.path, tc.status, msg)
		}
		if n := s.api.opts.refusals.largeBodies.Load(); n != 2 {
			t.Errorf("%d large bodies counted, want the 2 of the table", n)
		}
		var e errorBody
		s.call("GET", "/v1/kv/k?rev=2", "", 410, &e)
		if e.CompactRevision != 3 {
			t.Errorf("compacted read: compact_revision %d, want 3", e.CompactRevision)
		}
		if got := s.revision(); got != rev {
			t.Fatalf("failed requests changed the revision from %d to %d", rev, got)
		}
		s.call("PUT", "/v1/kv/k", "v3", http.StatusOK, nil)
		var compact compactResponse
		s.call("POST", "/v1/compact", fmt.Sprintf(`{"revision":%d,"physical":true}`, rev+1), http.StatusOK, &compact)
		if compact.Header.Revision != rev+1 {
			t.Fatalf("compact: %+v", compact)
		}
		// The router's own answers: unknown path, wrong method.
		if status, _ := s.do("GET", "/v2/kv/k", ""); status != http.StatusNotFound {
			t.Errorf("unknown path: %d", status)
		}
		if status, _ := s.do("PATCH", "/v1/kv/k", ""); status != http.StatusMethodNotAllowed {
			t.Errorf("PATCH: %d", status)
		}
	})
}
