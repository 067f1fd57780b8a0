package etcdapi

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strconv"
)

// etcd names members by uint64 IDs and etcdctl prints them in hex. kvstore
// names members by strings. Two kinds of kvstore IDs map to etcd IDs:
//
//   - An etcd-style ID, 16 lowercase hex digits (what [PeerMemberID]
//     derives, and what the kvstore-etcd server opens its members with), is
//     its own value: MemberID("8e9e05c52164694d") is 0x8e9e05c52164694d, and
//     etcdctl prints the member under the name kvstore knows it by.
//   - Any other ID (an embedded node's "n1") is hashed, FNV-1a 64.
//
// Both are computed alike by every member, with no coordination, and are
// stable across restarts and releases.

// MemberID returns the etcd member ID of the kvstore member id: the value
// of an etcd-style ID (16 lowercase hex digits, not all zero), else the
// 64-bit FNV-1a hash of id, or 1 if that is 0 (etcd reserves 0 for "no
// member").
func MemberID(id string) uint64 {
	if v, ok := etcdStyleID(id); ok {
		return v
	}
	return hashID(id)
}

// ClusterID returns the etcd cluster ID of the cluster whose token is
// token: the FNV-1a 64 hash of the token, or 1 if that is 0.
func ClusterID(token string) uint64 { return hashID(token) }

// PeerMemberID returns the etcd-style kvstore member ID of the member whose
// peer URLs are peerURLs, in the cluster whose token is token: 16
// lowercase hex digits of a uint64 (never 0) derived from the sorted URLs
// and the token, which [MemberID] returns as the etcd ID. The order of
// peerURLs does not matter.
//
// etcd derives the IDs of the initial members the same way (from peer URLs
// and the cluster token), and adds the current time for a member added
// later, so that a member removed and added again at the same URLs gets a
// new ID, since etcd refuses a removed ID forever. kvstore adds no time:
// the member started with --initial-cluster-state existing must find its
// ID from its own flags, with no one to ask, and raft lets a removed ID be
// added again (its old data dir must be wiped first, as etcd requires).
//
// A URL counts by its scheme, host and port alone: the spellings
// [ParsePeerURL] accepts for one peer ("http://h:2380", "http://h:2380/",
// "HTTP://h:2380") give one ID, whichever of them a flag or etcdctl used.
func PeerMemberID(peerURLs []string, token string) string {
	sorted := make([]string, len(peerURLs))
	for i, u := range peerURLs {
		sorted[i] = canonicalPeerURL(u)
	}
	slices.Sort(sorted)
	h := sha256.New()
	for _, u := range sorted {
		h.Write([]byte(u))
		h.Write([]byte{0})
	}
	h.Write([]byte(token))
	v := binary.BigEndian.Uint64(h.Sum(nil))
	if v == 0 {
		v = 1
	}
	return FormatMemberID(v)
}

// canonicalPeerURL returns raw as scheme://host:port, lowercase scheme, if
// it is a peer URL ParsePeerURL accepts; else raw as it is.
func canonicalPeerURL(raw string) string {
	hostPort, err := ParsePeerURL(raw, "")
	if err != nil {
		return raw
	}
	u, _ := url.Parse(raw) // ParsePeerURL parsed it
	return u.Scheme + "://" + hostPort
}

// FormatMemberID returns the etcd-style kvstore member ID whose etcd ID is
// id: id in 16 lowercase hex digits, as etcdctl prints it.
func FormatMemberID(id uint64) string { return fmt.Sprintf("%016x", id) }

// etcdStyleID parses an etcd-style ID.
func etcdStyleID(id string) (uint64, bool) {
	if len(id) != 16 {
		return 0, false
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(id, 16, 64)
	return v, err == nil && v != 0
}

func hashID(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}
