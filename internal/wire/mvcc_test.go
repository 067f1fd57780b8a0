package wire

import (
	"reflect"
	"testing"

	"github.com/kvstore/kvstore/mvcc"
)

// The wire types mirror mvcc's requests field by field. These tests make
// a field added on either side, and not carried through the log, fail
// here instead of being dropped silently on every replica.

// wirePairs pairs each mvcc request type with the wire type that carries
// it.
var wirePairs = []struct{ mvcc, wire reflect.Type }{
	{reflect.TypeFor[mvcc.PutRequest](), reflect.TypeFor[Put]()},
	{reflect.TypeFor[mvcc.DeleteRequest](), reflect.TypeFor[Delete]()},
	{reflect.TypeFor[mvcc.RangeRequest](), reflect.TypeFor[Range]()},
	{reflect.TypeFor[mvcc.Compare](), reflect.TypeFor[Compare]()},
	{reflect.TypeFor[mvcc.Op](), reflect.TypeFor[Op]()},
	{reflect.TypeFor[mvcc.TxnRequest](), reflect.TypeFor[Txn]()},
}

// TestWireTypesMirrorMVCCRequests: every exported field of an mvcc request
// has a field of the same name and kind in its wire type, and the other
// way round.
func TestWireTypesMirrorMVCCRequests(t *testing.T) {
	for _, p := range wirePairs {
		for _, f := range reflect.VisibleFields(p.mvcc) {
			if !f.IsExported() {
				continue
			}
			w, ok := p.wire.FieldByName(f.Name)
			switch {
			case !ok:
				t.Errorf("mvcc.%s.%s has no counterpart in wire.%s: add it (with a new codec tag) and to the conversions", p.mvcc.Name(), f.Name, p.wire.Name())
			case w.Type.Kind() != f.Type.Kind():
				t.Errorf("wire.%s.%s is a %s, mvcc.%s.%s a %s", p.wire.Name(), f.Name, w.Type.Kind(), p.mvcc.Name(), f.Name, f.Type.Kind())
			}
		}
		for _, w := range reflect.VisibleFields(p.wire) {
			if _, ok := p.mvcc.FieldByName(w.Name); !ok {
				t.Errorf("wire.%s.%s has no counterpart in mvcc.%s", p.wire.Name(), w.Name, p.mvcc.Name())
			}
		}
	}
}

// TestConversionsCarryEveryField fills every field of each mvcc request
// with a value of its own (by reflection, so a new field is filled too),
// sends it through its command, encoded and decoded, and requires the
// same request back.
func TestConversionsCarryEveryField(t *testing.T) {
	var put mvcc.PutRequest
	var del mvcc.DeleteRequest
	var txn mvcc.TxnRequest
	next := 0
	fill(t, reflect.ValueOf(&put).Elem(), &next, 0)
	fill(t, reflect.ValueOf(&del).Elem(), &next, 0)
	fill(t, reflect.ValueOf(&txn).Elem(), &next, 0)

	back := func(c *Command) *Command {
		t.Helper()
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(data)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := back(&Command{Kind: CmdPut, Put: PutOf(&put)}).Put.Request(); !reflect.DeepEqual(got, &put) {
		t.Errorf("put through the log:\n got %+v\nwant %+v", got, &put)
	}
	if got := back(&Command{Kind: CmdDelete, Delete: DeleteOf(&del)}).Delete.Request(); !reflect.DeepEqual(got, &del) {
		t.Errorf("delete through the log:\n got %+v\nwant %+v", got, &del)
	}
	if got := back(&Command{Kind: CmdTxn, Txn: TxnOf(&txn)}).Txn.Request(); !reflect.DeepEqual(got, &txn) {
		t.Errorf("txn through the log:\n got %+v\nwant %+v", got, &txn)
	}
	// The filler reached every kind of op, nested txns included.
	if len(txn.Then) != 4 || txn.Then[3].Txn == nil || len(txn.Then[3].Txn.Then) != 3 {
		t.Fatalf("the filled txn lacks op kinds: %+v", txn)
	}
}

var opType = reflect.TypeFor[mvcc.Op]()

// fill sets every field of v to a non-zero value that no other field got
// (counting with next). A []mvcc.Op gets one op per kind, since an op
// holds exactly one request; nested txns stop at depth 1.
func fill(t *testing.T, v reflect.Value, next *int, depth int) {
	t.Helper()
	*next++
	n := *next
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), next, depth)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), next, depth)
	case reflect.Slice:
		switch {
		case v.Type().Elem().Kind() == reflect.Uint8:
			v.SetBytes([]byte{byte(n), byte(n >> 8), 'x'})
		case v.Type().Elem() == opType:
			kinds := opType.NumField()
			if depth > 0 {
				kinds-- // no txn below the nested one
			}
			ops := reflect.MakeSlice(v.Type(), kinds, kinds)
			for i := range kinds {
				fill(t, ops.Index(i).Field(i), next, depth+1)
			}
			v.Set(ops)
		default:
			s := reflect.MakeSlice(v.Type(), 1, 1)
			fill(t, s.Index(0), next, depth)
			v.Set(s)
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n % 200))
	case reflect.String:
		v.SetString(string(rune('a' + n%26)))
	default:
		t.Fatalf("fill: no value for a %s field", v.Type())
	}
}
