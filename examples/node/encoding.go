package main

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/kvstore/kvstore"
)

// How keys and values cross the API (README.md, "Keys and values"):
//
//   - In a URL path the key is the path after /v1/kv/ (or /v1/watch/),
//     percent-decoded: any byte can be written as %XX. A PUT's body is the
//     value, byte for byte.
//   - In JSON a key or value is a string field ("key", "value") holding
//     the bytes as they are when they are valid UTF-8, which is what curl
//     users type and read. Bytes that are not valid UTF-8 would be mangled
//     by a JSON string, so they go in a sibling field holding standard
//     base64 ("key_base64", "value_base64") and the plain field is left
//     out. With the query parameter encoding=base64 every key and value of
//     the response uses the base64 fields, for programs that handle binary
//     data and want one field to read.
//   - Request bodies (txn) accept either field of each pair, never both.
//   - Lease IDs are decimal strings in JSON ("lease": "7587862074028580100"):
//     they are random 62-bit numbers, beyond the 2^53 that JavaScript and
//     jq 1.6 hold exactly. Requests accept a string or a number.

// encoding says how a response writes keys and values.
type encoding struct{ base64 bool }

// parseEncoding reads the encoding query parameter: "" or "text" (the
// default described above) or "base64".
func parseEncoding(s string) (encoding, error) {
	switch s {
	case "", "text":
		return encoding{}, nil
	case "base64":
		return encoding{base64: true}, nil
	}
	return encoding{}, fmt.Errorf("%w: encoding=%q: want text or base64", errBadRequest, s)
}

// bytes returns b as the text field or the base64 field, the other nil.
func (e encoding) bytes(b []byte) (text, b64 *string) {
	if !e.base64 && utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

// jsonHeader is kvstore.Header in JSON.
type jsonHeader struct {
	Revision int64  `json:"revision"`
	RaftTerm uint64 `json:"raft_term,omitempty"`
	MemberID string `json:"member_id,omitempty"`
}

func headerJSON(h kvstore.Header) jsonHeader {
	return jsonHeader{Revision: h.Revision, RaftTerm: h.RaftTerm, MemberID: h.MemberID}
}

// jsonKV is a kvstore.KeyValue in JSON. Value fields are absent for
// keys_only reads and delete events.
type jsonKV struct {
	Key            *string `json:"key,omitempty"`
	KeyBase64      *string `json:"key_base64,omitempty"`
	Value          *string `json:"value,omitempty"`
	ValueBase64    *string `json:"value_base64,omitempty"`
	CreateRevision int64   `json:"create_revision"`
	ModRevision    int64   `json:"mod_revision"`
	Version        int64   `json:"version"`
	Lease          leaseID `json:"lease,omitempty"`
}

func (e encoding) kv(kv *kvstore.KeyValue, withValue bool) *jsonKV {
	if kv == nil {
		return nil
	}
	out := &jsonKV{CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: leaseID(kv.Lease)}
	out.Key, out.KeyBase64 = e.bytes(kv.Key)
	if withValue {
		out.Value, out.ValueBase64 = e.bytes(kv.Value)
	}
	return out
}

// kvs converts a list; never nil, so that JSON shows [] for no keys.
func (e encoding) kvs(list []kvstore.KeyValue, withValue bool) []*jsonKV {
	out := make([]*jsonKV, len(list))
	for i := range list {
		out[i] = e.kv(&list[i], withValue)
	}
	return out
}

// leaseID is a lease ID in JSON: written as a decimal string, read from a
// string or a number.
type leaseID int64

func (id leaseID) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.FormatInt(int64(id), 10)), nil
}

func (id *leaseID) UnmarshalJSON(data []byte) error {
	s := string(data)
	if len(s) > 0 && s[0] == '"' {
		var err error
		if s, err = strconv.Unquote(s); err != nil {
			return fmt.Errorf("lease ID %s: %w", data, err)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("lease ID %s: want a decimal integer", data)
	}
	*id = leaseID(n)
	return nil
}

// requestBytes reads a key or value of a request body from its text or
// base64 field. present reports whether either was given; giving both, or
// base64 that does not decode, is an error naming field (the caller says
// where in the request it is).
func requestBytes(field string, text, b64 *string) (b []byte, present bool, err error) {
	switch {
	case text != nil && b64 != nil:
		return nil, false, fmt.Errorf("give %q or %q, not both", field, field+"_base64")
	case text != nil:
		return []byte(*text), true, nil
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, false, fmt.Errorf("%s_base64: %v", field, err)
		}
		return b, true, nil
	}
	return nil, false, nil
}
