package etcdapi_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/kvtest"

	"github.com/kvstore/kvstore/etcdapi"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPeerMemberID(t *testing.T) {
	a := etcdapi.PeerMemberID([]string{"http://10.0.0.1:2380", "http://10.0.0.2:2380"}, "tok")
	if b := etcdapi.PeerMemberID([]string{"http://10.0.0.2:2380", "http://10.0.0.1:2380"}, "tok"); a != b {
		t.Errorf("the order of the URLs changes the ID: %s, %s", a, b)
	}
	for _, other := range []string{
		etcdapi.PeerMemberID([]string{"http://10.0.0.1:2380"}, "tok"),
		etcdapi.PeerMemberID([]string{"http://10.0.0.1:2380", "http://10.0.0.2:2380"}, "other"),
	} {
		if other == a {
			t.Errorf("another member or cluster got the same ID %s", a)
		}
	}
	if len(a) != 16 || etcdapi.FormatMemberID(etcdapi.MemberID(a)) != a {
		t.Errorf("MemberID(%q) = %x: not the ID's own value", a, etcdapi.MemberID(a))
	}
	// A URL is its scheme, host and port: the spellings ParsePeerURL
	// accepts for one peer give one ID, so that a member started with
	// --initial-advertise-peer-urls=http://h:2380/ finds the ID that
	// etcdctl member add --peer-urls=HTTP://h:2380 added it under.
	canonical := etcdapi.PeerMemberID([]string{"http://10.0.0.1:2380"}, "tok")
	if got := etcdapi.PeerMemberID([]string{"http://10.0.0.1:2380"}, "tok"); got != canonical {
		t.Fatalf("the ID is not stable: %s, %s", got, canonical)
	}
	for _, spelling := range []string{"http://10.0.0.1:2380/", "HTTP://10.0.0.1:2380"} {
		if got := etcdapi.PeerMemberID([]string{spelling}, "tok"); got != canonical {
			t.Errorf("PeerMemberID(%q) = %s, want %s as for http://10.0.0.1:2380", spelling, got, canonical)
		}
	}
	// Other IDs are hashed, as before: embedded nodes keep their etcd IDs.
	for _, id := range []string{"n1", "8E9E05C52164694D", "0000000000000000", "8e9e05c52164694", "8e9e05c52164694dz"} {
		if got, want := etcdapi.MemberID(id), fnv64a(id); got != want {
			t.Errorf("MemberID(%q) = %x, want the hash %x", id, got, want)
		}
	}
}

func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// MemberAdd adds a voter or a learner under the ID derived from its peer
// URL, listed without a name until it starts; a taken or bad URL is
// refused with etcd's errors; MemberUpdate refuses an address the member
// does not answer at and keeps the recorded one.
func TestMemberAddAndUpdate(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testContext(t)
	cli := c.client(t)

	urls := []string{"http://10.0.0.4:2380"}
	added, err := cli.MemberAddAsLearner(ctx, urls)
	if err != nil {
		t.Fatal(err)
	}
	wantID := etcdapi.MemberID(etcdapi.PeerMemberID(urls, "kvstore"))
	if added.Member.ID != wantID || !added.Member.IsLearner || len(added.Members) != 4 {
		t.Fatalf("added %+v, members %+v; want ID %x", added.Member, added.Members, wantID)
	}
	for _, m := range added.Members {
		if m.ID == wantID && (m.Name != "" || m.PeerURLs[0] != "10.0.0.4:2380" || !m.IsLearner) {
			t.Errorf("the unstarted member is listed as %+v", m)
		}
	}
	if _, err := cli.MemberAdd(ctx, urls); rpctypes.Error(err) != rpctypes.ErrPeerURLExist {
		t.Errorf("adding the URL again: %v, want ErrPeerURLExist", err)
	}
	if _, err := cli.MemberAdd(ctx, []string{"http://" + c.Address(0) + ":1", "http://10.0.0.5:2380"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("two peer URLs: %v, want InvalidArgument", err)
	}
	for _, bad := range []string{"10.0.0.5:2380", "ftp://10.0.0.5:2380", "http://10.0.0.5", "http://10.0.0.5:2380/x"} {
		// clientv3 checks URLs itself; etcdctl and other clients may not.
		raw := pb.NewClusterClient(cli.ActiveConnection())
		if _, err := raw.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{bad}}); rpctypes.Error(err) != rpctypes.ErrMemberBadURLs {
			t.Errorf("peer URL %q: %v, want ErrMemberBadURLs", bad, err)
		}
	}

	if _, err := cli.MemberUpdate(ctx, 12345, []string{"http://10.0.0.6:2380"}); rpctypes.Error(err) != rpctypes.ErrMemberNotFound {
		t.Errorf("updating an unknown member: %v, want ErrMemberNotFound", err)
	}
	// Nobody answers as the new member at 10.0.0.7: the leader keeps the
	// recorded address.
	if _, err := cli.MemberUpdate(ctx, wantID, []string{"http://10.0.0.7:2380"}); err == nil {
		t.Error("an address the member does not answer at was recorded")
	}
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Members {
		if m.ID == wantID && m.PeerURLs[0] != "10.0.0.4:2380" {
			t.Errorf("after a refused update the member is at %v", m.PeerURLs)
		}
	}
	if _, err := cli.MemberRemove(ctx, wantID); err != nil {
		t.Fatal(err)
	}
	voter, err := cli.MemberAdd(ctx, []string{"http://10.0.0.8:2380"})
	if err != nil || voter.Member.IsLearner {
		t.Fatalf("adding a voter: %+v, %v", voter, err)
	}
	if _, err := cli.MemberRemove(ctx, voter.Member.ID); err != nil {
		t.Fatal(err)
	}
}

// Members that publish their name and client URLs are listed with them
// by every member, not only by themselves.
func TestMemberListShowsPublishedAttributes(t *testing.T) {
	c := newCluster(t, 3, kvtest.WithNodeOptionsByID(func(id string) []kvstore.Option {
		return []kvstore.Option{kvstore.WithMemberName("name-" + id), kvstore.WithClientURLs("http://" + id + ".example:2379")}
	}))
	ctx := testContext(t)
	for i := range c.endpoints {
		cli := c.client(t, i)
		deadline := time.Now().Add(time.Minute)
		for {
			list, err := cli.MemberList(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ok := len(list.Members) == 3
			for j, m := range list.Members {
				id := c.ID(j)
				ok = ok && m.Name == "name-"+id && slices.Equal(m.ClientURLs, []string{"http://" + id + ".example:2379"})
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %d lists %+v", i, list.Members)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
