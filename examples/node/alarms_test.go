package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"
)

// A store filled to its quota answers writes 507 database_space_exceeded
// and lists the NOSPACE alarm; once compacted and disarmed, it takes them
// again.
func TestAlarmsAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s := startNode(t, apiOptions{}, kvtest.WithNodeOptions(kvstore.WithQuotaBytes(8<<10)))
		var list alarmsResponse
		s.call("GET", "/v1/alarms", "", http.StatusOK, &list)
		if len(list.Alarms) != 0 {
			t.Fatalf("alarms of a new store: %+v", list)
		}
		value := strings.Repeat("v", 512)
		full := false
		for i := 0; i < 100 && !full; i++ {
			status, _ := s.do("PUT", fmt.Sprint("/v1/kv/fill/", i), value)
			full = status == http.StatusInsufficientStorage
		}
		if !full {
			t.Fatal("100 puts of 512 bytes fitted in an 8 KiB quota")
		}
		msg := s.callError("PUT", "/v1/kv/one-more", "x", http.StatusInsufficientStorage, "database_space_exceeded")
		if !strings.Contains(msg, "database space exceeded") {
			t.Fatalf("message %q", msg)
		}
		s.callError("POST", "/v1/lease", `{"ttl": 60}`, http.StatusInsufficientStorage, "database_space_exceeded")
		s.call("GET", "/v1/alarms", "", http.StatusOK, &list)
		if len(list.Alarms) != 1 || list.Alarms[0] != (jsonAlarm{MemberID: "n1", Alarm: "NOSPACE"}) {
			t.Fatalf("alarms when full: %+v", list)
		}
		var st statusResponse
		s.call("GET", "/v1/status", "", http.StatusOK, &st)
		if st.QuotaBytes != 8<<10 || len(st.Alarms) != 1 || st.StoreSize == 0 {
			t.Fatalf("status when full: %+v", st)
		}
		s.callError("POST", "/v1/alarms/disarm", `{"member_id":"n1","alarm":"BOGUS"}`, http.StatusBadRequest, "invalid_argument")
		s.callError("POST", "/v1/alarms/disarm", `{"alarm":"NOSPACE"}`, http.StatusBadRequest, "invalid_argument")

		var del deleteResponse
		s.call("DELETE", "/v1/kv/fill/?prefix=1", "", http.StatusOK, &del)
		s.call("POST", "/v1/compact", fmt.Sprintf(`{"revision": %d, "physical": true}`, del.Header.Revision), http.StatusOK, nil)
		s.call("POST", "/v1/alarms/disarm", `{}`, http.StatusOK, &list)
		if len(list.Alarms) != 0 {
			t.Fatalf("alarms after disarming all: %+v", list)
		}
		s.call("PUT", "/v1/kv/one-more", "x", http.StatusOK, nil)
	})
}
