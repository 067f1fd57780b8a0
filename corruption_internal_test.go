package kvstore

import (
	"slices"
	"testing"
)

// corruptVerdict's rules: the members outside a majority's hash are
// corrupt; with no majority, every member compared is.
func TestCorruptVerdict(t *testing.T) {
	h := func(member string, hash uint32) memberHash { return memberHash{member: member, hash: hash} }
	for _, tc := range []struct {
		name     string
		hashes   []memberHash
		members  int
		corrupt  []string
		majority bool
	}{
		{"all agree", []memberHash{h("n1", 1), h("n2", 1), h("n3", 1)}, 3, nil, false},
		{"alone", []memberHash{h("n1", 1)}, 1, nil, false},
		{"one of three differs", []memberHash{h("n1", 1), h("n2", 2), h("n3", 1)}, 3, []string{"n2"}, true},
		{"the checker differs", []memberHash{h("n1", 2), h("n2", 1), h("n3", 1)}, 3, []string{"n1"}, true},
		{"two of five differ", []memberHash{h("n1", 1), h("n2", 2), h("n3", 1), h("n4", 3), h("n5", 1)}, 5, []string{"n2", "n4"}, true},
		{"two of five agree: no majority", []memberHash{h("n1", 1), h("n2", 1), h("n3", 2)}, 5, []string{"n1", "n2", "n3"}, false},
		{"three of five agree", []memberHash{h("n1", 1), h("n2", 1), h("n3", 2), h("n4", 1)}, 5, []string{"n3"}, true},
		{"two members disagree", []memberHash{h("n1", 1), h("n2", 2)}, 2, []string{"n1", "n2"}, false},
		{"three-way split", []memberHash{h("n1", 1), h("n2", 2), h("n3", 3)}, 3, []string{"n1", "n2", "n3"}, false},
		{"one of three compared with the checker", []memberHash{h("n1", 1), h("n2", 2)}, 3, []string{"n1", "n2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			corrupt, majority := corruptVerdict(tc.hashes, tc.members)
			slices.Sort(corrupt)
			if !slices.Equal(corrupt, tc.corrupt) || majority != tc.majority {
				t.Fatalf("corrupt %v, majority %v; want %v, %v", corrupt, majority, tc.corrupt, tc.majority)
			}
		})
	}
}
