package auth

import (
	"bytes"
	"slices"
)

// Permission checks, made against the store's current state. While auth
// is disabled every check passes. With auth enabled, a check for no user
// is ErrUserEmpty, one for an unknown user ErrPermissionDenied (an admin
// check: ErrUserNotFound, as etcd's), and a user holding the root role
// passes every check.

// IsRangePermitted checks that user may read [key, end) in etcd's range
// encoding (an empty end: key alone; "\x00": every key from key on).
func (s *Store) IsRangePermitted(user string, key, end []byte) error {
	return s.isPermitted(user, key, end, Read)
}

// IsPutPermitted checks that user may write key.
func (s *Store) IsPutPermitted(user string, key []byte) error {
	return s.isPermitted(user, key, nil, Write)
}

// IsDeleteRangePermitted checks that user may write [key, end).
func (s *Store) IsDeleteRangePermitted(user string, key, end []byte) error {
	return s.isPermitted(user, key, end, Write)
}

// IsAdminPermitted checks that user holds the root role, which etcd's
// admin calls (auth management, membership, compaction, snapshots...)
// need.
func (s *Store) IsAdminPermitted(user string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if user == "" {
		return ErrUserEmpty
	}
	u, ok := s.users[user]
	if !ok {
		return ErrUserNotFound
	}
	if !u.hasRole(RootRole) {
		return ErrPermissionDenied
	}
	return nil
}

func (s *Store) isPermitted(name string, key, end []byte, want PermType) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if name == "" {
		return ErrUserEmpty
	}
	u, ok := s.users[name]
	if !ok {
		return ErrPermissionDenied
	}
	if u.hasRole(RootRole) {
		return nil
	}
	var granted []interval
	for _, roleName := range u.roles {
		r, ok := s.roles[roleName]
		if !ok {
			continue
		}
		for _, p := range r.perms {
			if p.Type.grants(want) {
				granted = append(granted, intervalOf(p.Key, p.End))
			}
		}
	}
	if covers(granted, intervalOf(key, end)) {
		return nil
	}
	return ErrPermissionDenied
}

// interval is a half-open key interval [begin, end); end nil means no
// upper bound.
type interval struct {
	begin, end []byte
}

// intervalOf is the interval etcd's range encoding names: an empty end is
// the single key (the interval up to its successor, key+"\x00"), "\x00"
// every key from key on.
func intervalOf(key, end []byte) interval {
	switch {
	case len(end) == 0:
		return interval{begin: key, end: append(slices.Clip(key), 0)}
	case len(end) == 1 && end[0] == 0:
		return interval{begin: key}
	}
	return interval{begin: key, end: end}
}

// covers reports whether the union of granted covers want entirely. An
// empty want (end at or below begin) is covered when its first key is:
// such a request reads or writes nothing, and etcd's check denies it
// unless the point is granted.
func covers(granted []interval, want interval) bool {
	if want.end != nil && bytes.Compare(want.end, want.begin) <= 0 {
		want = intervalOf(want.begin, nil)
	}
	slices.SortFunc(granted, func(a, b interval) int { return bytes.Compare(a.begin, b.begin) })
	// Sweep: reached is how far from want.begin the union reaches without
	// a gap.
	reached := want.begin
	for _, g := range granted {
		if bytes.Compare(g.begin, reached) > 0 {
			break // a gap before g
		}
		if g.end == nil {
			return true
		}
		if bytes.Compare(g.end, reached) > 0 {
			reached = g.end
		}
		if want.end != nil && bytes.Compare(reached, want.end) >= 0 {
			return true
		}
	}
	return false
}
