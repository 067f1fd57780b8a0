package transport_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
)

// kvstoreTiming is the raft timing of the kvstore nodes in these tests.
var kvstoreTiming = kvstore.WithRaftTiming(200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond, 5*time.Millisecond)

// Bootstrap addresses a TCP transport could never dial are refused at Open, before the data dir
// is touched, with an error naming the peer and the reason; so is this node listed at another
// address than its transport's. The same transport then opens with the right peers, and the
// addresses of members to add or to join through are checked too.
func TestTCPKVStoreOpenChecksAddresses(t *testing.T) {
	tr := newTCP(t)
	self := string(tr.LocalAddr())
	dir := t.TempDir()
	refused := func(what string, peers []kvstore.Peer, want ...string) error {
		t.Helper()
		n, err := kvstore.Open(dir, kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithBootstrap(peers...))
		if err == nil {
			n.Close()
			t.Fatalf("%s: Open succeeded", what)
		}
		if !errors.Is(err, kvstore.ErrInvalidOption) || !strings.Contains(err.Error(), "WithBootstrap") {
			t.Errorf("%s: %v, want ErrInvalidOption naming WithBootstrap", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to say %s", what, err, w)
			}
		}
		if entries, rerr := os.ReadDir(dir); rerr != nil || len(entries) != 0 {
			t.Fatalf("%s: the data dir holds %v (%v), want it untouched", what, entries, rerr)
		}
		return err
	}
	for _, bad := range []string{"n1", ":0", "host:99999", ""} {
		err := refused(fmt.Sprintf("peer n2 at %q", bad), []kvstore.Peer{{ID: "n1", Address: self}, {ID: "n2", Address: bad}}, `peer "n2"`, fmt.Sprintf("%q", bad))
		if !errors.Is(err, kvstore.ErrInvalidAddress) {
			t.Errorf("peer n2 at %q: %v, want ErrInvalidAddress", bad, err)
		}
		err = refused(fmt.Sprintf("this node at %q", bad), []kvstore.Peer{{ID: "n1", Address: bad}}, `peer "n1"`, fmt.Sprintf("%q", bad))
		if !errors.Is(err, kvstore.ErrInvalidAddress) {
			t.Errorf("this node at %q: %v, want ErrInvalidAddress", bad, err)
		}
	}
	refused("this node at another address", []kvstore.Peer{{ID: "n1", Address: "127.0.0.1:1"}, {ID: "n2", Address: "127.0.0.1:2"}},
		`"127.0.0.1:1"`, fmt.Sprintf("%q", self))

	n, err := kvstore.Open(dir, kvstore.WithID("n1"), kvstore.WithTransport(tr), kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: self}), kvstoreTiming)
	if err != nil {
		t.Fatalf("Open with this node at its transport's address: %v", err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"n2", "127.0.0.1:0", ""} {
		for name, add := range map[string]func(context.Context, string, string) error{"AddVoter": n.AddVoter, "AddLearner": n.AddLearner} {
			if err := add(ctx, "n2", bad); !errors.Is(err, kvstore.ErrInvalidMember) || !errors.Is(err, kvstore.ErrInvalidAddress) {
				t.Errorf("%s(n2, %q): %v, want ErrInvalidMember and ErrInvalidAddress", name, bad, err)
			}
		}
	}
	if ms, err := n.Members(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("members after refused additions: %+v, %v", ms, err)
	}

	joiner, err := kvstore.Open("", kvstore.WithID("n2"), kvstore.WithTransport(newTCP(t)), kvstore.WithInMemoryStorage(), kvstoreTiming)
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Close()
	if err := joiner.Join(ctx, []string{self, "n1"}); !errors.Is(err, kvstore.ErrInvalidMember) || !errors.Is(err, kvstore.ErrInvalidAddress) || !strings.Contains(err.Error(), `"n1"`) {
		t.Fatalf(`Join through "n1": %v, want ErrInvalidMember and ErrInvalidAddress naming it`, err)
	}
	if ms, err := n.Members(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("members after a refused Join: %+v, %v", ms, err)
	}
}
