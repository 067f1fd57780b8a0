package storage

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// appendResult is a log store whose appends return err and count.
type appendResult struct {
	raft.LogStore
	err   error
	calls int
}

func (s *appendResult) StoreLogs([]*raft.Log) error { s.calls++; return s.err }

// An append the disk guard's checks refuse is not offered to the early
// sender and is ErrNoSpace: it certainly did not happen. One that fails
// while it is written after the early sender sent it on is
// ErrSentUnstored, not ErrNoSpace (followers may commit it), and still
// marks the disk full. One the early sender did not send is ErrNoSpace.
func TestDiskGuardEarlySend(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "wal", Err: syscall.ENOSPC}
	logs := []*raft.Log{{Index: 1, Term: 1}}
	type offer struct{ offered, sent bool }
	cases := []struct {
		name     string
		before   error // the injected check
		sealed   bool  // raft-wal's tail is sealed
		storeErr error
		sends    bool // the early sender sends what it is offered
		want     offer
		wantErr  error
		notErr   error
		wantFull bool
	}{
		{name: "stored", sends: true, want: offer{true, true}},
		{name: "refused by the check", before: enospc, sends: true, wantErr: ErrNoSpace, notErr: ErrSentUnstored, wantFull: true},
		{name: "sealed tail", sealed: true, storeErr: errors.New("segment is sealed"), sends: true, wantErr: ErrNoSpace, notErr: ErrSentUnstored, wantFull: true},
		{name: "failed after it was sent", storeErr: enospc, sends: true, want: offer{true, true}, wantErr: ErrSentUnstored, notErr: ErrNoSpace, wantFull: true},
		{name: "failed, not sent", storeErr: enospc, want: offer{true, false}, wantErr: ErrNoSpace, notErr: ErrSentUnstored, wantFull: true},
		{name: "other failure after it was sent", storeErr: errors.New("EIO"), sends: true, want: offer{true, true}, wantErr: ErrSentUnstored, notErr: ErrNoSpace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := &appendResult{err: tc.storeErr}
			st := &Storage{Logs: inner, rotation: &walRotation{}}
			if tc.sealed {
				err := error(&os.PathError{Op: "fallocate", Path: "seg", Err: syscall.ENOSPC})
				st.rotation.err.Store(&err)
			}
			g := NewDiskGuard(st, "n1", func() error { return tc.before }, nil)
			var got offer
			g.SetEarlySend(func(l []*raft.Log) bool {
				if len(l) != 1 || l[0] != logs[0] {
					t.Errorf("offered %v, want the append's entries", l)
				}
				got.offered = true
				got.sent = tc.sends
				return tc.sends
			})
			err := g.StoreLogs(logs)
			if got != tc.want {
				t.Errorf("early sender: %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("StoreLogs: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("StoreLogs: %v, want %v", err, tc.wantErr)
			case tc.notErr != nil && errors.Is(err, tc.notErr):
				t.Fatalf("StoreLogs: %v matches %v", err, tc.notErr)
			}
			if g.Full() != tc.wantFull {
				t.Errorf("Full() = %v, want %v", g.Full(), tc.wantFull)
			}
		})
	}
}

// The during hook runs within the append, after the early send: a test's
// slow disk delays the write, not the sending.
func TestDiskGuardDuringRunsAfterEarlySend(t *testing.T) {
	var order []string
	inner := &appendResult{}
	g := NewDiskGuard(&Storage{Logs: inner}, "n1", nil, func() { order = append(order, "during") })
	g.SetEarlySend(func([]*raft.Log) bool { order = append(order, "sent"); return true })
	if err := g.StoreLogs([]*raft.Log{{Index: 1, Term: 1}}); err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "sent" || order[1] != "during" || inner.calls != 1 {
		t.Fatalf("order %v, %d appends; want [sent during], 1", order, inner.calls)
	}
}
