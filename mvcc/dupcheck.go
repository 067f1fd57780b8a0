package mvcc

import "fmt"

// writeSet is what one group of txn ops may write: the keys it puts and the
// ranges it deletes.
type writeSet struct {
	puts []string
	dels []keyRange
}

func (ws *writeSet) add(o writeSet) {
	ws.puts = append(ws.puts, o.puts...)
	ws.dels = append(ws.dels, o.dels...)
}

// deletes reports whether any of the set's delete ranges covers k.
func (ws *writeSet) deletes(k string) bool {
	for _, d := range ws.dels {
		if d.contains(k) {
			return true
		}
	}
	return false
}

// checkDuplicates enforces SEMANTICS.md rule 15: along any path through the
// txn (Then or Else at every level) a key is written at most once — no two
// puts of a key, no put of a key inside a delete's range, in either order at
// any depth. Overlapping deletes are fine. Unlike etcd's check it has no
// holes: from-key deletes and sibling nested txns are covered.
func checkDuplicates(t *TxnRequest) error {
	if _, err := listWrites(t.Then); err != nil {
		return err
	}
	_, err := listWrites(t.Else)
	return err
}

// listWrites checks one op list and returns everything any path through it
// may write. Ops of the list itself are on every path; the writes of a
// nested txn (either branch) share a path with every other op of the list
// and with every other nested txn's writes.
func listWrites(ops []Op) (writeSet, error) {
	var direct writeSet
	groups := []writeSet{}
	seen := map[string]bool{}
	for i := range ops {
		switch op := &ops[i]; {
		case op.Put != nil:
			k := string(op.Put.Key)
			if seen[k] {
				return writeSet{}, duplicate(k)
			}
			seen[k] = true
			direct.puts = append(direct.puts, k)
		case op.Delete != nil:
			direct.dels = append(direct.dels, newKeyRange(op.Delete.Key, op.Delete.End))
		case op.Txn != nil:
			then, err := listWrites(op.Txn.Then)
			if err != nil {
				return writeSet{}, err
			}
			els, err := listWrites(op.Txn.Else)
			if err != nil {
				return writeSet{}, err
			}
			then.add(els)
			groups = append(groups, then)
		}
	}
	for _, k := range direct.puts {
		if direct.deletes(k) {
			return writeSet{}, duplicate(k)
		}
	}
	groups = append(groups, direct)
	// Across groups: a put in one may not meet a put or a delete in another.
	owner := map[string]int{}
	for g := range groups {
		for _, k := range groups[g].puts {
			if o, ok := owner[k]; ok && o != g {
				return writeSet{}, duplicate(k)
			}
			owner[k] = g
		}
	}
	for g := range groups {
		for h := range groups {
			if g == h {
				continue
			}
			for _, k := range groups[g].puts {
				if groups[h].deletes(k) {
					return writeSet{}, duplicate(k)
				}
			}
		}
	}
	var all writeSet
	for _, g := range groups {
		all.add(g)
	}
	return all, nil
}

func duplicate(key string) error {
	return fmt.Errorf("%w: %q", ErrDuplicateKey, key)
}
