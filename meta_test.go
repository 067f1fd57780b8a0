package kvstore_test

import (
	"errors"
	"testing"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A data dir belongs to one node of one cluster: opening it as another
// node, or under another cluster token, fails and changes nothing.
func TestDataDirIdentity(t *testing.T) {
	dir := t.TempDir()
	network := transport.NewNetwork()
	open := func(id string, opts ...kvstore.Option) (*kvstore.Node, error) {
		tr, err := network.Join("a")
		if err != nil {
			t.Fatal(err)
		}
		n, err := kvstore.Open(dir, append([]kvstore.Option{kvstore.WithID(id), kvstore.WithTransport(tr)}, opts...)...)
		if err != nil {
			tr.Close()
		}
		return n, err
	}
	n, err := open("n1", kvstore.WithClusterToken("blue"), kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "a"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := open("n2", kvstore.WithClusterToken("blue")); !errors.Is(err, kvstore.ErrClusterMismatch) {
		t.Fatalf("another node ID: %v", err)
	}
	if _, err := open("n1", kvstore.WithClusterToken("green")); !errors.Is(err, kvstore.ErrClusterMismatch) {
		t.Fatalf("another cluster token: %v", err)
	}
	if _, err := open("n1"); !errors.Is(err, kvstore.ErrClusterMismatch) {
		t.Fatalf("the default cluster token: %v", err)
	}
	n, err = open("n1", kvstore.WithClusterToken("blue"))
	if err != nil {
		t.Fatalf("the right identity: %v", err)
	}
	n.Close()
}

func TestMemoryStorageIsUsedByOneNodeAtATime(t *testing.T) {
	network := transport.NewNetwork()
	mem := kvstore.NewMemoryStorage()
	open := func(addr, id string) (*kvstore.Node, error) {
		tr, err := network.Join(addr)
		if err != nil {
			t.Fatal(err)
		}
		n, err := kvstore.Open("", kvstore.WithID(id), kvstore.WithTransport(tr), kvstore.WithMemoryStorage(mem))
		if err != nil {
			tr.Close()
		}
		return n, err
	}
	n, err := open("a", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open("b", "n1"); !errors.Is(err, kvstore.ErrInvalidOption) {
		t.Fatalf("second open of a storage in use: %v", err)
	}
	n.Close()
	if _, err := open("c", "n2"); !errors.Is(err, kvstore.ErrClusterMismatch) {
		t.Fatalf("reopening as another node: %v", err)
	}
	n, err = open("d", "n1")
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
}
