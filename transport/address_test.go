package transport_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kvstore/kvstore/transport"
)

func TestTCPValidateAddress(t *testing.T) {
	tr := newTCP(t)
	for _, addr := range []string{
		"127.0.0.1:7000", "10.0.0.5:1", "node1.example:65535", "n1:7000", "node_1.internal.:2380",
		"[::1]:7000", "[fe80::1%eth0]:7000", "localhost:2380", string(tr.LocalAddr()),
	} {
		if err := tr.ValidateAddress(addr); err != nil {
			t.Errorf("ValidateAddress(%q) = %v, want nil", addr, err)
		}
	}
	for _, tc := range []struct{ addr, why string }{
		{"", "empty"},
		{"n1", "missing port"},
		{":0", "port"},
		{":7000", "no host"},
		{"host:99999", "port"},
		{"host:0", "port"},
		{"host:http", "port"},
		{"host:-1", "port"},
		{"0.0.0.0:7000", "every local interface"},
		{"[::]:7000", "every local interface"},
		{"::1:7000", "too many colons"},
		{"bad host:7000", "neither an IP address nor a DNS name"},
		{"a..b:7000", "neither"},
		{"n1\x00n2:7000", "neither"},
		{strings.Repeat("a", 64) + ".example:7000", "neither"},
	} {
		err := tr.ValidateAddress(tc.addr)
		if !errors.Is(err, transport.ErrInvalidAddress) || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.addr)) {
			t.Errorf("ValidateAddress(%q) = %v, want ErrInvalidAddress naming the address and saying %q", tc.addr, err, tc.why)
		}
	}
}

func TestMemValidateAddress(t *testing.T) {
	tr := join(t, transport.NewNetwork(), "n1")
	for _, addr := range []string{"n1", "n2", "anything at all", "127.0.0.1:0"} {
		if err := tr.ValidateAddress(addr); err != nil {
			t.Errorf("ValidateAddress(%q) = %v, want nil", addr, err)
		}
	}
	if err := tr.ValidateAddress(""); !errors.Is(err, transport.ErrInvalidAddress) {
		t.Errorf(`ValidateAddress("") = %v, want ErrInvalidAddress`, err)
	}
}

// An advertise address must be one peers can dial.
func TestTCPAdvertiseAddrIsValidated(t *testing.T) {
	for _, addr := range []string{"node1.example:0", ":7000", "0.0.0.0:7000"} {
		tr, err := transport.NewTCP("127.0.0.1:0", transport.WithAdvertiseAddr(addr))
		if err == nil {
			tr.Close()
			t.Errorf("WithAdvertiseAddr(%q) accepted", addr)
			continue
		}
		if !errors.Is(err, transport.ErrInvalidOption) || !errors.Is(err, transport.ErrInvalidAddress) || !strings.Contains(err.Error(), "WithAdvertiseAddr") {
			t.Errorf("WithAdvertiseAddr(%q): %v, want ErrInvalidOption and ErrInvalidAddress naming the option", addr, err)
		}
	}
}
