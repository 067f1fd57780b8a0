package kvstore

import (
	"fmt"
	"math"
	"reflect"

	"github.com/kvstore/kvstore/mvcc"
)

// Cmp is one condition of a Txn, as clientv3.Cmp: a target (Value,
// Version, CreateRevision, ModRevision or LeaseValue of a key) passed
// through Compare with an operator and an operand. The zero Cmp, or a
// target never passed through Compare, is invalid: Commit returns
// ErrInvalidCompare. A Cmp is a value; its byte slices are read, not
// copied, and must not be modified until Commit returns.
//
// Evaluation follows etcd (SEMANTICS.md rule 11): on a missing key or an
// empty range a Value compare is false whatever the operator, and the other
// targets compare against 0; on a range every key must satisfy the compare.
type Cmp struct {
	key, end []byte
	target   mvcc.CompareTarget
	result   mvcc.CompareResult
	value    []byte
	number   int64
	compared bool  // set by Compare
	err      error // what Compare found wrong
}

// Value compares the key's value, with a []byte or string operand.
func Value(key []byte) Cmp { return Cmp{key: key, target: mvcc.CompareValue} }

// Version compares the key's version (0 for a missing key).
func Version(key []byte) Cmp { return Cmp{key: key, target: mvcc.CompareVersion} }

// CreateRevision compares the revision that created the key's current
// generation (0 for a missing key).
func CreateRevision(key []byte) Cmp { return Cmp{key: key, target: mvcc.CompareCreate} }

// ModRevision compares the revision of the key's last change (0 for a
// missing key).
func ModRevision(key []byte) Cmp { return Cmp{key: key, target: mvcc.CompareMod} }

// LeaseValue compares the ID of the key's lease (0 for none or a missing
// key).
func LeaseValue(key []byte) Cmp { return Cmp{key: key, target: mvcc.CompareLease} }

// Compare completes a target with an operator, one of "=", "!=", "<" and
// ">", and an operand: a []byte or string for Value, any integer type that
// fits an int64 for the other targets. Bad input does not panic (clientv3's
// Compare does): the Cmp records it and Commit returns ErrInvalidCompare.
func Compare(cmp Cmp, result string, v any) Cmp {
	cmp.compared, cmp.err = true, nil
	switch result {
	case "=":
		cmp.result = mvcc.CompareEqual
	case "!=":
		cmp.result = mvcc.CompareNotEqual
	case "<":
		cmp.result = mvcc.CompareLess
	case ">":
		cmp.result = mvcc.CompareGreater
	default:
		cmp.err = fmt.Errorf("%w: unknown result %q on %q (want \"=\", \"!=\", \"<\" or \">\")", ErrInvalidCompare, result, cmp.key)
		return cmp
	}
	if cmp.target == mvcc.CompareValue {
		switch x := v.(type) {
		case []byte:
			cmp.value = x
		case string:
			cmp.value = []byte(x)
		default:
			cmp.err = fmt.Errorf("%w: %s compare on %q needs a []byte or string, got %T", ErrInvalidCompare, targetName(cmp.target), cmp.key, v)
		}
		return cmp
	}
	n, ok := int64Operand(v)
	if !ok {
		cmp.err = fmt.Errorf("%w: %s compare on %q needs an integer that fits an int64, got %T(%v)", ErrInvalidCompare, targetName(cmp.target), cmp.key, v, v)
		return cmp
	}
	cmp.number = n
	return cmp
}

// WithRange makes the compare cover the keys in [key, end): it holds only if
// it holds for every key there.
func (cmp Cmp) WithRange(end []byte) Cmp {
	cmp.end = end
	return cmp
}

// WithPrefix makes the compare cover every key starting with its key.
func (cmp Cmp) WithPrefix() Cmp {
	cmp.end = mvcc.PrefixEnd(cmp.key)
	return cmp
}

// mvccCompare returns the store's compare, or why there is none.
func (cmp Cmp) mvccCompare() (mvcc.Compare, error) {
	if !cmp.compared {
		return mvcc.Compare{}, fmt.Errorf("%w: %s target on %q not passed through Compare", ErrInvalidCompare, targetName(cmp.target), cmp.key)
	}
	if cmp.err != nil {
		return mvcc.Compare{}, cmp.err
	}
	return mvcc.Compare{Key: cmp.key, End: cmp.end, Target: cmp.target, Result: cmp.result, Value: cmp.value, Number: cmp.number}, nil
}

func int64Operand(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u), true
		}
	}
	return 0, false
}

func targetName(t mvcc.CompareTarget) string {
	switch t {
	case mvcc.CompareValue:
		return "Value"
	case mvcc.CompareVersion:
		return "Version"
	case mvcc.CompareCreate:
		return "CreateRevision"
	case mvcc.CompareMod:
		return "ModRevision"
	case mvcc.CompareLease:
		return "LeaseValue"
	}
	return fmt.Sprintf("target(%d)", t)
}
