package mvcc

// SortOrder is the order of a Range's results.
type SortOrder uint8

const (
	SortNone SortOrder = iota
	SortAscend
	SortDescend
)

// SortTarget is the field a Range sorts by.
type SortTarget uint8

const (
	SortByKey SortTarget = iota
	SortByVersion
	SortByCreateRevision
	SortByModRevision
	SortByValue
)

// RangeRequest reads the keys in [Key, End) at a revision.
//
// End follows etcd: empty means the single key Key; "\x00" means every key
// >= Key (with Key "\x00" too: every key); an End that sorts at or before Key
// selects nothing. [PrefixEnd] turns a prefix into its End.
type RangeRequest struct {
	Key []byte
	End []byte
	// Revision is the revision to read at; 0 or negative reads the current one.
	Revision int64
	// Limit caps the number of kvs returned; 0 or negative means no limit.
	Limit      int64
	SortOrder  SortOrder
	SortTarget SortTarget
	// KeysOnly drops each kv's value, and its lease unless sorting by value
	// (as etcd v3.7 does).
	KeysOnly  bool
	CountOnly bool
	// The filters keep keys whose mod or create revision lies within the
	// bounds; 0 means unbounded.
	MinModRevision    int64
	MaxModRevision    int64
	MinCreateRevision int64
	MaxCreateRevision int64
}

// RangeResult answers a RangeRequest.
type RangeResult struct {
	KVs []KeyValue
	// Count is the number of keys in the range at the read revision, before
	// filters and limit (SEMANTICS.md rule 2).
	Count int64
	// More reports that the limit cut off keys that passed the filters.
	More bool
	// Revision is the store's current revision (rule 1), also for reads at a
	// past revision.
	Revision int64
}

// PutRequest writes one key.
type PutRequest struct {
	Key   []byte
	Value []byte
	// Lease attaches the key to a lease; 0 detaches it from any lease.
	Lease int64
	// PrevKV asks for the key's previous version in the result.
	PrevKV bool
	// IgnoreValue keeps the key's current value; the key must exist and
	// Value must be empty.
	IgnoreValue bool
	// IgnoreLease keeps the key's current lease; the key must exist and
	// Lease must be 0.
	IgnoreLease bool
}

// PutResult answers a PutRequest.
type PutResult struct {
	Revision int64
	// PrevKV is the key before the put, when asked for and it existed.
	PrevKV *KeyValue
}

// DeleteRequest deletes the keys in [Key, End), End as in RangeRequest.
type DeleteRequest struct {
	Key    []byte
	End    []byte
	PrevKV bool
}

// DeleteResult answers a DeleteRequest.
type DeleteResult struct {
	Revision int64
	Deleted  int64
	// PrevKVs are the deleted keys, in key order, when asked for.
	PrevKVs []KeyValue
}

// CompareTarget is the field a Compare looks at.
type CompareTarget uint8

const (
	CompareVersion CompareTarget = iota
	CompareCreate
	CompareMod
	CompareValue
	CompareLease
)

// CompareResult is a Compare's operator.
type CompareResult uint8

const (
	CompareEqual CompareResult = iota
	CompareGreater
	CompareLess
	CompareNotEqual
)

// Compare is one condition of a Txn: Target of every key in [Key, End)
// compared with the operand (Value for CompareValue, Number otherwise).
type Compare struct {
	Key    []byte
	End    []byte
	Target CompareTarget
	Result CompareResult
	Value  []byte
	Number int64
}

// Op is one operation of a Txn branch; exactly one field is set.
type Op struct {
	Range  *RangeRequest
	Put    *PutRequest
	Delete *DeleteRequest
	Txn    *TxnRequest
}

// TxnRequest runs Then if every Compare holds, else Else, as one revision.
type TxnRequest struct {
	Compares []Compare
	Then     []Op
	Else     []Op
}

// OpResult answers one Op; the field matching the Op is set.
type OpResult struct {
	Range  *RangeResult
	Put    *PutResult
	Delete *DeleteResult
	Txn    *TxnResult
}

// TxnResult answers a TxnRequest.
type TxnResult struct {
	Succeeded bool
	// Results answer the ops of the branch that ran, in order.
	Results []OpResult
	// Revision is the txn's revision: the new one if it changed anything,
	// else the current one. Nested txns report 0 (SEMANTICS.md rule 14).
	Revision int64
}

// PrefixEnd returns the End that selects every key starting with prefix:
// prefix with its last byte below 0xff incremented, or "\x00" (every key) when
// there is none.
func PrefixEnd(prefix []byte) []byte {
	end := make([]byte, len(prefix))
	copy(end, prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}
