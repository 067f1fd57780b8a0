package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

func TestTxnCompareAndSwap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		s.call("PUT", "/v1/kv/k", "v1", http.StatusOK, nil) // revision 2
		cas := `{"compare":[{"key":"k","target":"value","result":"=","value":"v1"}],
			"success":[{"put":{"key":"k","value":"v2","prev_kv":true}}],
			"failure":[{"get":{"key":"k"}}]}`
		var resp txnResponse
		s.call("POST", "/v1/txn", cas, http.StatusOK, &resp)
		if !resp.Succeeded || resp.Header.Revision != 3 || len(resp.Responses) != 1 {
			t.Fatalf("first swap: %+v", resp)
		}
		if p := resp.Responses[0].Put; p == nil || p.Header.Revision != 3 || p.PrevKV == nil || str(p.PrevKV.Value) != "v1" {
			t.Fatalf("first swap's put: %+v", resp.Responses[0])
		}
		// The same swap again: the value is v2 now, so the failure branch
		// runs and reads it, without a new revision.
		s.call("POST", "/v1/txn", cas, http.StatusOK, &resp)
		if resp.Succeeded || resp.Header.Revision != 3 {
			t.Fatalf("second swap: %+v", resp)
		}
		if g := resp.Responses[0].Get; g == nil || len(g.KVs) != 1 || str(g.KVs[0].Value) != "v2" {
			t.Fatalf("second swap's get: %+v", resp.Responses[0])
		}
	})
}

func TestTxnTargetsAndOps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := startNode(t, apiOptions{})
		grant, err := c.Node(0).Grant(t.Context(), 60)
		if err != nil {
			t.Fatal(err)
		}
		s.call("PUT", fmt.Sprintf("/v1/kv/a?lease=%d", grant.ID), "1", http.StatusOK, nil) // revision 2
		s.call("PUT", "/v1/kv/a", "2", http.StatusOK, nil)                                 // 3, lease detached
		s.call("PUT", "/v1/kv/b", "x", http.StatusOK, nil)                                 // 4
		holds := []string{
			`{"key":"a","target":"version","result":"=","version":2}`,
			`{"key":"a","target":"VERSION","result":"GREATER","version":1}`,
			`{"key":"a","target":"create","result":"=","create_revision":2}`,
			`{"key":"a","target":"mod","result":"<","mod_revision":4}`,
			`{"key":"a","target":"mod_revision","result":"not_equal","mod_revision":2}`,
			`{"key":"a","target":"lease","result":"=","lease":"0"}`,
			`{"key":"a","target":"lease","result":"!=","lease":` + fmt.Sprint(grant.ID) + `}`,
			`{"key_base64":"YQ==","target":"value","result":"=","value_base64":"Mg=="}`,
			`{"key":"","prefix":true,"target":"version","result":">","version":0}`,
			`{"key":"missing","target":"version","result":"=","version":0}`,
		}
		fails := []string{
			`{"key":"a","target":"version","result":"<","version":2}`,
			`{"key":"missing","target":"value","result":"!=","value":"x"}`, // a value compare on no key is false
			`{"key":"","prefix":true,"target":"value","result":"=","value":"2"}`,
		}
		for _, cmp := range append(holds, fails...) {
			var resp txnResponse
			s.call("POST", "/v1/txn", `{"compare":[`+cmp+`]}`, http.StatusOK, &resp)
			if want := !strings.Contains(strings.Join(fails, "\n"), cmp); resp.Succeeded != want {
				t.Errorf("compare %s: succeeded %v, want %v", cmp, resp.Succeeded, want)
			}
		}

		// Every op kind, nested txn included, in one write txn; the
		// keys_only get has no value field, and encoding=base64 applies to
		// every key and value.
		body := `{"success":[
			{"delete":{"key":"a","prev_kv":true}},
			{"put":{"key_base64":"AP8=","value":"bin"}},
			{"get":{"key":"","prefix":true,"keys_only":true}},
			{"txn":{"compare":[{"key":"b","target":"value","result":"=","value":"x"}],
			        "success":[{"get":{"key":"b"}}, {"delete":{"key":"b"}}]}}]}`
		var resp txnResponse
		s.call("POST", "/v1/txn?encoding=base64", body, http.StatusOK, &resp)
		if !resp.Succeeded || resp.Header.Revision != 5 || len(resp.Responses) != 4 {
			t.Fatalf("txn: %+v", resp)
		}
		r := resp.Responses
		if r[0].Delete == nil || r[0].Delete.Deleted != 1 || str(r[0].Delete.PrevKVs[0].ValueBase64) != "Mg==" {
			t.Errorf("delete: %+v", r[0].Delete)
		}
		if r[1].Put == nil || r[1].Put.Header.Revision != 5 {
			t.Errorf("put: %+v", r[1].Put)
		}
		if g := r[2].Get; g == nil || len(g.KVs) != 2 || str(g.KVs[0].KeyBase64) != "AP8=" || g.KVs[0].ValueBase64 != nil || g.KVs[0].Value != nil {
			t.Errorf("keys-only get: %+v", r[2].Get)
		}
		if n := r[3].Txn; n == nil || !n.Succeeded || len(n.Responses) != 2 || str(n.Responses[0].Get.KVs[0].ValueBase64) != "eA==" || n.Responses[1].Delete.Deleted != 1 {
			t.Errorf("nested txn: %+v", r[3].Txn)
		}
		var get getResponse
		s.call("GET", "/v1/kv/?prefix=1", "", http.StatusOK, &get)
		if get.Count != 1 || str(get.KVs[0].KeyBase64) != "AP8=" || str(get.KVs[0].Value) != "bin" {
			t.Fatalf("after the txn: %+v", get)
		}
	})
}

// TestTxnTooDeep: a txn nested 65 deep, one op per level (which passes the
// op limit), is too_many_ops, refused before it reaches the log (rule 16);
// it used to be committed and then rejected at apply as a 500.
func TestTxnTooDeep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{})
		nest := func(depth int) string {
			body := `{"put":{"key":"a","value":"v"}}`
			for range depth - 1 {
				body = `{"txn":{"success":[` + body + `]}}`
			}
			return `{"success":[` + body + `]}`
		}
		s.call("POST", "/v1/txn", nest(64), http.StatusOK, nil)
		rev := s.revision()
		s.callError("POST", "/v1/txn", nest(65), 400, "too_many_ops")
		if got := s.revision(); got != rev {
			t.Fatalf("a refused txn changed the revision from %d to %d", rev, got)
		}
	})
}

func TestTxnErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{}, kvtest.WithNodeOptions(kvstore.WithMaxTxnOps(2)))
		s.call("PUT", "/v1/kv/k", "v", http.StatusOK, nil)
		rev := s.revision()
		cases := []struct {
			body   string
			status int
			code   string
		}{
			{``, 400, "bad_request"},
			{`[]`, 400, "bad_request"},
			{`{"compare":[],"sucess":[]}`, 400, "bad_request"},
			{`{"compare":[{"target":"value","result":"=","value":"v"}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","key_base64":"aw==","target":"value","result":"=","value":"v"}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","target":"size","result":"=","value":"v"}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","target":"value","result":"<=","value":"v"}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","target":"value","result":"=","version":1}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","target":"value","result":"=","value":"v","version":1}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","target":"version","result":"="}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","target":"lease","result":"=","lease":"x"}]}`, 400, "bad_request"},
			{`{"compare":[{"key":"k","target":"value","result":"=","value_base64":"!!"}]}`, 400, "bad_request"},
			{`{"success":[{}]}`, 400, "bad_request"},
			{`{"success":[{"put":{"key":"k","value":"v"},"get":{"key":"k"}}]}`, 400, "bad_request"},
			{`{"success":[{"put":{"value":"v"}}]}`, 400, "bad_request"},
			{`{"success":[{"get":{"key":"k","limit":-1}}]}`, 400, "bad_request"},
			{`{"success":[{"txn":{"success":[{"delete":{}}]}}]}`, 400, "bad_request"},
			{`{"success":[{"put":{"key":"","value":"v"}}]}`, 400, "empty_key"},
			{`{"success":[{"get":{"key":"k","prefix":true,"from_key":true}}]}`, 400, "invalid_argument"},
			{`{"success":[{"put":{"key":"a","value":"1"}},{"put":{"key":"a","value":"2"}}]}`, 400, "duplicate_key"},
			{`{"success":[{"put":{"key":"a"}},{"put":{"key":"b"}},{"put":{"key":"c"}}]}`, 400, "too_many_ops"},
			{`{"success":[{"put":{"key":"a","lease":"4242"}}]}`, 404, "lease_not_found"},
			{`{"success":[{"get":{"key":"k","rev":99}}]}`, 400, "future_revision"},
		}
		for _, tc := range cases {
			msg := s.callError("POST", "/v1/txn", tc.body, tc.status, tc.code)
			t.Logf("%s: %s", tc.body, msg)
		}
		s.callError("POST", "/v1/txn?prefix=1", `{}`, 400, "bad_request")
		if got := s.revision(); got != rev {
			t.Fatalf("failed txns changed the revision from %d to %d", rev, got)
		}
		// The error says where the problem is.
		msg := s.callError("POST", "/v1/txn", `{"success":[{"get":{"key":"k"}},{"txn":{"failure":[{"put":{}}]}}]}`, 400, "bad_request")
		if !strings.Contains(msg, "success[1].txn.failure[0]") {
			t.Fatalf("error does not locate the op: %s", msg)
		}
	})
}

// FuzzTxnBody checks that any body decodes and builds into kvstore ops
// without panicking, and that what it refuses is a bad request.
func FuzzTxnBody(f *testing.F) {
	f.Add(`{"compare":[{"key":"k","target":"value","result":"=","value":"v"}],"success":[{"put":{"key":"k","value":"v2"}}],"failure":[{"get":{"key":"k"}}]}`)
	f.Add(`{"compare":[{"key":"","prefix":true,"target":"LEASE","result":"NOT_EQUAL","lease":"5"}],"success":[{"txn":{"success":[{"delete":{"key_base64":"AP8=","prefix":true}}]}}]}`)
	f.Add(`{"success":[{"get":{"key":"k","rev":-1}}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var req txnRequest
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&req) != nil {
			return
		}
		if _, _, _, err := req.build(""); err != nil && !errors.Is(err, errBadRequest) {
			t.Fatalf("%s: %v is not a bad request", body, err)
		}
	})
}
