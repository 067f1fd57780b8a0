package kvstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kvstore/kvstore/transport"
)

func TestBuildConfig(t *testing.T) {
	net := transport.NewNetwork()
	tr, err := net.Join("n1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	base := []Option{WithID("n1"), WithTransport(tr)}
	c, err := buildConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.maxRequestBytes != 1536*1024 || c.maxTxnOps != 128 || c.logStore != LogStoreWAL {
		t.Fatalf("defaults %+v", c)
	}
	rc := c.raftConfig(hclog.NewNullLogger())
	if err := raft.ValidateConfig(rc); err != nil {
		t.Fatalf("default raft config invalid: %v", err)
	}
	if !rc.BatchApplyCh {
		t.Error("raft's apply channel is not buffered (BatchApplyCh): writers hand over one at a time")
	}
	cases := []struct {
		opts   []Option
		option string
	}{
		{[]Option{WithTransport(tr)}, "WithID"},
		{[]Option{WithID("n1")}, "WithTransport"},
		{append(base, WithID("")), "WithID"},
		{append(base, WithBootstrap()), "WithBootstrap"},
		{append(base, WithBootstrap(Peer{"n2", "a"})), "WithBootstrap"},
		{append(base, WithBootstrap(Peer{"n1", "a"}, Peer{"n1", "b"})), "WithBootstrap"},
		{append(base, WithBootstrap(Peer{"n1", "a"}, Peer{"n2", "a"})), "WithBootstrap"},
		{append(base, WithBootstrap(Peer{"n1", "n1"}, Peer{"", "n2"})), "WithBootstrap"},
		{append(base, WithBootstrap(Peer{"n1", "n1"}, Peer{"n2", ""})), "WithBootstrap"},
		{append(base, WithBootstrap(Peer{"n1", "elsewhere"})), "WithBootstrap"},
		{append(base, WithRaftTiming(-1, 0, 0, 0)), "WithRaftTiming"},
		{append(base, WithRaftTiming(time.Second, time.Millisecond*500, 0, 0)), "WithRaftTiming"},
		{append(base, WithSnapshots(0, time.Second, 1)), "WithSnapshots"},
		{append(base, WithSnapshots(10, time.Second, 0)), "WithSnapshots"},
		{append(base, WithMaxRequestBytes(0)), "WithMaxRequestBytes"},
		{append(base, WithMaxTxnOps(-1)), "WithMaxTxnOps"},
		{append(base, WithLogStore(LogStore(9))), "WithLogStore"},
		{append(base, WithLogStore(LogStoreBolt+1)), "WithLogStore"},
		{append(base, WithMemoryStorage(nil)), "WithMemoryStorage"},
		{append(base, WithAutoCompaction(AutoCompactionMode(7), time.Hour)), "WithAutoCompaction"},
		{append(base, WithAutoCompaction(AutoCompactionOff-1, time.Hour)), "WithAutoCompaction"},
		{append(base, WithAutoCompaction(AutoCompactionPeriodic, -time.Hour)), "WithAutoCompaction"},
		{append(base, WithAutoCompaction(AutoCompactionRevision, -5)), "WithAutoCompaction"},
		{append(base, WithAutoCompaction(AutoCompactionOff, -1)), "WithAutoCompaction"},
		{append(base, WithAutoCompaction(AutoCompactionPeriodic, 0)), "WithAutoCompaction"},
		{append(base, WithAutoCompaction(AutoCompactionPeriodic, time.Millisecond)), "WithAutoCompaction"},
		{append(base, WithAutoCompaction(AutoCompactionRevision, 0)), "WithAutoCompaction"},
		{append(base, nil), "Open"},
	}
	for _, tc := range cases {
		_, err := buildConfig(tc.opts)
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.option) {
			t.Errorf("error %v, want ErrInvalidOption naming %s", err, tc.option)
		}
	}
	// A bad address names its peer and matches ErrInvalidAddress; this
	// node listed elsewhere than its transport names both addresses.
	_, err = buildConfig(append(base, WithBootstrap(Peer{"n1", "n1"}, Peer{"n2", ""})))
	if !errors.Is(err, ErrInvalidAddress) || !strings.Contains(err.Error(), `peer "n2"`) {
		t.Errorf("empty address: %v, want ErrInvalidAddress naming the peer", err)
	}
	_, err = buildConfig(append(base, WithBootstrap(Peer{"n1", "elsewhere"})))
	if !strings.Contains(err.Error(), `"elsewhere"`) || !strings.Contains(err.Error(), `"n1"`) {
		t.Errorf("this node listed at another address: %v, want both addresses named", err)
	}
	mem := NewMemoryStorage()
	c, err = buildConfig(append(base, WithBootstrap(Peer{"n1", "n1"}, Peer{"n2", "n2"}), WithMemoryStorage(mem),
		WithRaftTiming(50*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond), WithMaxTxnOps(4)))
	if err != nil || c.memory != mem || c.maxTxnOps != 4 || len(c.bootstrap) != 2 {
		t.Fatalf("%+v %v", c, err)
	}
	if err := raft.ValidateConfig(c.raftConfig(hclog.NewNullLogger())); err != nil {
		t.Fatalf("raft config invalid: %v", err)
	}
}
