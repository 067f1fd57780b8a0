package etcdapi

import "hash/fnv"

// MemberID returns the etcd member ID that this package gives the kvstore
// member id: the 64-bit FNV-1a hash of id, or 1 if that is 0 (etcd reserves
// 0 for "no member"). Every member computes the same value, and it is
// stable across restarts and releases.
func MemberID(id string) uint64 { return hashID(id) }

// ClusterID returns the etcd cluster ID of the cluster whose token is
// token, derived as [MemberID] derives member IDs.
func ClusterID(token string) uint64 { return hashID(token) }

func hashID(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}
