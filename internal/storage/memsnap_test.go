package storage

import (
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

func TestMemSnapshotStore(t *testing.T) {
	s := newMemSnapshotStore(2)
	write := func(index uint64, data string, commit bool) {
		sink, err := s.Create(1, index, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		sink.Write([]byte(data))
		// Not visible until closed.
		if list, _ := s.List(); len(list) > 0 && list[0].Index == index {
			t.Fatal("snapshot published before Close")
		}
		if commit {
			sink.Close()
		} else {
			sink.Cancel()
		}
	}
	write(10, "ten", true)
	write(20, "twenty", false)
	write(30, "thirty", true)
	write(40, "forty", true)
	list, _ := s.List()
	if len(list) != 2 || list[0].Index != 40 || list[1].Index != 30 {
		t.Fatalf("list %+v, want 40 then 30 (retain 2, cancelled one dropped)", list)
	}
	meta, rc, err := s.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	if string(data) != "forty" || meta.Size != 5 {
		t.Fatalf("opened %q size %d", data, meta.Size)
	}
	if _, _, err := s.Open("nope"); err == nil {
		t.Fatal("opening a missing snapshot succeeded")
	}
	if _, err := s.Create(2, 1, 1, raft.Configuration{}, 1, nil); err == nil {
		t.Fatal("unsupported snapshot version accepted")
	}
}
