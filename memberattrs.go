package kvstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/internal/wire"
)

// Member attributes, as etcd's: what a member states about itself — a
// human-readable name and the URLs its clients reach it at — published
// through raft so that every member's Members lists them, whoever is
// asked. A member opened WithMemberName or WithClientURLs publishes them
// after it starts (a wire.CmdMemberAttrs entry), and again after a restart
// with other values, or with none: a member restarted without them
// withdraws what it published before. Until it has published, Members
// lists it with none, as etcd lists a member added but not started.
//
// The FSM keeps the latest attributes of each member. A configuration
// entry that removes a member drops its attributes on every member at the
// same log index; the FSM snapshot carries them. Attributes a member
// proposed just before its removal and committed after it stay in the FSM
// until the next configuration entry; Members lists only the members of
// the configuration, so they are never shown.

// WithMemberName sets the name this member publishes (etcd's --name):
// [Member.Name] in every member's Members once published. The name is
// informational; members are still addressed by their IDs.
func WithMemberName(name string) Option {
	return func(c *config) error {
		if len(name) > wire.MaxMemberAttr {
			return invalid("WithMemberName", "name of %d bytes (at most %d)", len(name), wire.MaxMemberAttr)
		}
		c.attrs.Name = name
		return nil
	}
}

// WithClientURLs sets the URLs this member publishes as the ones its
// clients reach it at (etcd's --advertise-client-urls): [Member.ClientURLs]
// in every member's Members once published. kvstore does not serve them;
// the program serving a client API on the node does.
func WithClientURLs(urls ...string) Option {
	return func(c *config) error {
		if len(urls) > wire.MaxMemberClientURLs {
			return invalid("WithClientURLs", "%d URLs (at most %d)", len(urls), wire.MaxMemberClientURLs)
		}
		for _, u := range urls {
			if u == "" || len(u) > wire.MaxMemberAttr {
				return invalid("WithClientURLs", "URL of %d bytes", len(u))
			}
		}
		c.attrs.ClientURLs = slices.Clone(urls)
		return nil
	}
}

// memberAttrs is what a member publishes about itself.
type memberAttrs struct {
	Name       string
	ClientURLs []string
}

func (a memberAttrs) equal(b memberAttrs) bool {
	return a.Name == b.Name && slices.Equal(a.ClientURLs, b.ClientURLs)
}

func (a memberAttrs) empty() bool { return a.Name == "" && len(a.ClientURLs) == 0 }

// memberAttrSet is the FSM's record of the members' published attributes,
// by member ID. The apply goroutine changes it (apply, retain, replace);
// any goroutine reads it. mu guards byID; the values are never changed in
// place.
type memberAttrSet struct {
	mu   sync.RWMutex
	byID map[string]memberAttrs
}

// apply records the attributes a CmdMemberAttrs entry publishes.
func (s *memberAttrSet) apply(a *wire.MemberAttrs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string]memberAttrs{}
	}
	s.byID[a.ID] = memberAttrs{Name: a.Name, ClientURLs: slices.Clone(a.ClientURLs)}
}

// retain drops the attributes of every member the configuration c (a
// configuration entry being applied) leaves out.
func (s *memberAttrSet) retain(c raft.Configuration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.byID {
		if !slices.ContainsFunc(c.Servers, func(srv raft.Server) bool { return string(srv.ID) == id }) {
			delete(s.byID, id)
		}
	}
}

// get returns what member id published, the zero value if nothing.
func (s *memberAttrSet) get(id string) memberAttrs {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}

// memberAttrEntry is one member's attributes in a snapshot.
type memberAttrEntry struct {
	ID    string
	Attrs memberAttrs
}

// list returns every member's attributes, ordered by ID.
func (s *memberAttrSet) list() []memberAttrEntry {
	s.mu.RLock()
	out := make([]memberAttrEntry, 0, len(s.byID))
	for id, a := range s.byID {
		out = append(out, memberAttrEntry{ID: id, Attrs: a})
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b memberAttrEntry) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// replace sets the attributes to list (a snapshot restore).
func (s *memberAttrSet) replace(list []memberAttrEntry) {
	byID := make(map[string]memberAttrs, len(list))
	for _, e := range list {
		byID[e.ID] = e.Attrs
	}
	s.mu.Lock()
	s.byID = byID
	s.mu.Unlock()
}

// applyConfiguration is the FSM's part in a configuration entry: the
// attributes of members it removes go with them. An entry that does not
// decode is raft's own business (raft decoded it first); it is left alone.
func (f *fsm) applyConfiguration(l *raft.Log) {
	if l.Type != raft.LogConfiguration {
		return
	}
	c, err := decodeConfiguration(l.Data)
	if err != nil {
		return
	}
	f.memberAttrs.retain(c)
}

// decodeConfiguration decodes a configuration entry, as raft does; raft's
// DecodeConfiguration panics on bad bytes instead of returning an error.
func decodeConfiguration(data []byte) (c raft.Configuration, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kvstore: configuration entry: %v", r)
		}
	}()
	return raft.DecodeConfiguration(data), nil
}

// memberAttributes returns what member id published.
func (f *fsm) memberAttributes(id string) memberAttrs { return f.memberAttrs.get(id) }

// The members' attributes' part of the FSM snapshot (format 3 on): the
// number of members, 4 bytes big-endian; for each, its ID and name, each
// as a length of 2 bytes big-endian and the bytes, the number of client
// URLs, 1 byte, and each URL as the ID is; then the CRC-32C of all that,
// 4 bytes big-endian.

// maxMemberAttrEntries bounds the count a snapshot may claim, so that a
// damaged count cannot allocate much: far more members than raft could
// run with.
const maxMemberAttrEntries = 1 << 16

// appendMemberAttrs returns buf with the snapshot part of list appended.
func appendMemberAttrs(buf []byte, list []memberAttrEntry) []byte {
	start := len(buf)
	str := func(s string) {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(list)))
	for _, e := range list {
		str(e.ID)
		str(e.Attrs.Name)
		buf = append(buf, byte(len(e.Attrs.ClientURLs)))
		for _, u := range e.Attrs.ClientURLs {
			str(u)
		}
	}
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf[start:], memberAttrsCRC))
}

var memberAttrsCRC = crc32.MakeTable(crc32.Castagnoli)

// readMemberAttrs reads the snapshot part appendMemberAttrs wrote.
func readMemberAttrs(r io.Reader) ([]memberAttrEntry, error) {
	sum := crc32.New(memberAttrsCRC)
	tr := io.TeeReader(r, sum)
	fail := func(err error) ([]memberAttrEntry, error) {
		return nil, fmt.Errorf("member attributes: %w", err)
	}
	var head [4]byte
	if _, err := io.ReadFull(tr, head[:]); err != nil {
		return fail(err)
	}
	count := binary.BigEndian.Uint32(head[:])
	if count > maxMemberAttrEntries {
		return fail(fmt.Errorf("count %d out of range", count))
	}
	str := func() (string, error) {
		var n [2]byte
		if _, err := io.ReadFull(tr, n[:]); err != nil {
			return "", err
		}
		b := make([]byte, binary.BigEndian.Uint16(n[:]))
		_, err := io.ReadFull(tr, b)
		return string(b), err
	}
	list := make([]memberAttrEntry, 0, count)
	for range count {
		var e memberAttrEntry
		var err error
		if e.ID, err = str(); err != nil {
			return fail(err)
		}
		if e.Attrs.Name, err = str(); err != nil {
			return fail(err)
		}
		var urls [1]byte
		if _, err := io.ReadFull(tr, urls[:]); err != nil {
			return fail(err)
		}
		for range urls[0] {
			u, err := str()
			if err != nil {
				return fail(err)
			}
			e.Attrs.ClientURLs = append(e.Attrs.ClientURLs, u)
		}
		list = append(list, e)
	}
	want := sum.Sum32()
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return fail(err)
	}
	if binary.BigEndian.Uint32(head[:]) != want {
		return fail(errors.New("checksum mismatch"))
	}
	return list, nil
}

// Publishing timing: the first retry waits an election timeout, each next
// one twice as long, up to publishMaxWaits election timeouts; one attempt
// may take publishCallTimeouts election timeouts, at least publishMinCall.
const (
	publishMaxWaits     = 32
	publishCallTimeouts = 10
	publishMinCall      = 5 * time.Second
)

// errNotMemberYet makes publishing wait: the configuration this member
// knows does not include it yet (it was started before it was added, or
// it has not caught up).
var errNotMemberYet = errors.New("kvstore: this member is not in its configuration yet")

// runPublishAttributes is the goroutine that publishes this member's
// attributes (WithMemberName, WithClientURLs) once it is in the
// configuration, unless the replicated ones already are the same. Open
// starts it when there is something to publish, and at every restart
// (attributes published before and not given now are withdrawn); it ends
// once the replicated attributes are this member's, when the node learns
// it was removed, or when it closes.
func (n *Node) runPublishAttributes() {
	wait := n.cfg.electionTimeout
	for attempt := 1; ; attempt++ {
		_, changed := n.lead.get()
		err := n.publishAttributes()
		switch {
		case err == nil:
			return
		case n.closedCtx.Err() != nil, n.wasRemoved():
			return
		case attempt == 1 && !errors.Is(err, errNotMemberYet):
			n.logger().Warn("publishing this member's attributes failed; retrying until it succeeds", "member", n.cfg.id, "err", err)
		default:
			n.logger().Debug("publishing this member's attributes", "member", n.cfg.id, "attempt", attempt, "err", err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-changed: // a leader to propose through
		case <-timer.C:
		case <-n.closed:
		case <-n.removedCh:
		}
		timer.Stop()
		wait = min(2*wait, publishMaxWaits*n.cfg.electionTimeout)
	}
}

func (n *Node) wasRemoved() bool {
	select {
	case <-n.removedCh:
		return true
	default:
		return false
	}
}

// publishAttributes makes one attempt: nil once the replicated attributes
// are this member's.
func (n *Node) publishAttributes() error {
	ctx, cancel := context.WithTimeout(n.closedCtx, max(publishCallTimeouts*n.cfg.electionTimeout, publishMinCall))
	defer cancel()
	self, _, err := n.selfInConfiguration(ctx)
	if err != nil {
		return err
	}
	if self == nil {
		return errNotMemberYet
	}
	// Compare with everything committed, so that a restart with the same
	// attributes proposes nothing.
	if err := n.readIndex(ctx); err != nil {
		return err
	}
	want := n.cfg.attrs
	if n.fsm.memberAttributes(n.cfg.id).equal(want) {
		return nil
	}
	_, err = n.propose(ctx, &wire.Command{Kind: wire.CmdMemberAttrs, MemberAttrs: &wire.MemberAttrs{
		ID: n.cfg.id, Name: want.Name, ClientURLs: want.ClientURLs,
	}})
	if err == nil {
		n.logger().Info("published this member's attributes", "member", n.cfg.id, "name", want.Name, "client_urls", want.ClientURLs)
	}
	return err
}
