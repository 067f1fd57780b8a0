package config

import "encoding/json"

// Codec turns values into the bytes stored under their keys and back, as
// encoding/json does. Marshal receives a T and Unmarshal a *T, so a codec
// for protobuf, msgpack or YAML can assert the types it needs (a protobuf
// codec: proto.Message) and return an error for others.
//
// A Codec must be safe for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default Codec: encoding/json. Unknown fields in stored
// values are ignored, as encoding/json does, so a newer program's values
// still decode in an older one.
type JSON struct{}

// Marshal encodes v with json.Marshal.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes data with json.Unmarshal.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
