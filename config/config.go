package config

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kvstore/kvstore"
)

// Separator separates a Config's prefix from its names in the keys it
// stores: prefix + "/" + name. Names may not contain it.
const Separator = "/"

// DefaultRetries is how many times Update tries again after losing a
// race, unless WithRetries says otherwise.
const DefaultRetries = 100

// Config stores values of type T under names, each in the key
// prefix + "/" + name, encoded by its Codec, through one node. Every
// write is validated and encoded first: a value that fails either is
// never stored.
//
// A Config is safe for concurrent use; it holds no state but its options.
type Config[T any] struct {
	node     *kvstore.Node
	prefix   string // with the trailing separator
	codec    Codec
	validate func(T) error
	retries  int
}

// Validator is implemented by configuration types that check themselves:
// a T (or *T) with a Validate method has it run before every write, after
// the WithValidator function if there is one.
type Validator interface {
	Validate() error
}

// Option configures New.
type Option interface {
	apply(*options)
}

type options struct {
	codec     Codec
	codecSet  bool
	validator any // a func(T) error, checked by New
	retries   int
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithCodec sets the codec (default JSON). Nil is ErrNilCodec.
func WithCodec(c Codec) Option {
	return optionFunc(func(o *options) { o.codec, o.codecSet = c, true })
}

// WithValidator runs f on every value before it is written; an error
// refuses the write with a *ValidationError. Its type parameter must be
// the Config's (New returns ErrInvalidOption otherwise); it is inferred
// from f.
func WithValidator[T any](f func(T) error) Option {
	return optionFunc(func(o *options) { o.validator = f })
}

// WithRetries bounds how many times Update tries again after another
// writer changed the value between its read and its write (default
// DefaultRetries).
func WithRetries(n int) Option {
	return optionFunc(func(o *options) { o.retries = n })
}

// New returns a Config of T values under prefix, through node. A trailing
// separator on prefix is optional: "app/settings" and "app/settings/"
// name the same keys.
func New[T any](node *kvstore.Node, prefix string, opts ...Option) (*Config[T], error) {
	if node == nil {
		return nil, ErrNilNode
	}
	p := strings.TrimSuffix(prefix, Separator)
	if p == "" {
		return nil, fmt.Errorf("%w: %q", ErrInvalidPrefix, prefix)
	}
	o := options{codec: JSON{}, retries: DefaultRetries}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.codec == nil {
		return nil, ErrNilCodec
	}
	if o.retries < 0 {
		return nil, fmt.Errorf("%w: WithRetries(%d)", ErrInvalidOption, o.retries)
	}
	c := &Config[T]{node: node, prefix: p + Separator, codec: o.codec, retries: o.retries}
	if o.validator != nil {
		f, ok := o.validator.(func(T) error)
		if !ok {
			var zero T
			return nil, fmt.Errorf("%w: WithValidator of %T for a Config of %T", ErrInvalidOption, o.validator, zero)
		}
		c.validate = f
	}
	return c, nil
}

// Meta describes a stored value, as the store versions it.
type Meta struct {
	Name string
	// Revision is the value's mod revision: the store revision that wrote
	// it.
	Revision int64
	// CreateRevision is the revision that created the name (since it was
	// last deleted).
	CreateRevision int64
	// Version counts the writes since then: 1 on create.
	Version int64
}

func metaOf(name string, kv *kvstore.KeyValue) Meta {
	return Meta{Name: name, Revision: kv.ModRevision, CreateRevision: kv.CreateRevision, Version: kv.Version}
}

// Item is one entry of List.
type Item[T any] struct {
	Name  string
	Value T
	Meta  Meta
	// Err is a *DecodeError if the stored value does not decode (Value is
	// then the zero T); the other items are listed all the same.
	Err error
}

// Prefix returns the key prefix of the Config's names, with the trailing
// separator.
func (c *Config[T]) Prefix() string { return c.prefix }

// Key returns the key that stores name.
func (c *Config[T]) Key(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return c.prefix + name, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case strings.Contains(name, Separator):
		return fmt.Errorf("%w: %q holds the separator %q", ErrInvalidName, name, Separator)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidName, name)
	}
	return nil
}

// name returns the name a key under the prefix stores, false for keys
// that are not one of the Config's names (deeper paths, bad names).
func (c *Config[T]) name(key []byte) (string, bool) {
	name, ok := strings.CutPrefix(string(key), c.prefix)
	return name, ok && checkName(name) == nil
}

// decode decodes a stored value.
func (c *Config[T]) decode(name string, kv *kvstore.KeyValue) (T, error) {
	var v T
	if err := c.codec.Unmarshal(kv.Value, &v); err != nil {
		var zero T
		return zero, &DecodeError{Name: name, Revision: kv.ModRevision, Err: err}
	}
	return v, nil
}

// encode validates and encodes v for name.
func (c *Config[T]) encode(name string, v T) ([]byte, error) {
	if c.validate != nil {
		if err := c.validate(v); err != nil {
			return nil, &ValidationError{Name: name, Err: err}
		}
	}
	if val, ok := any(v).(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, &ValidationError{Name: name, Err: err}
		}
	} else if val, ok := any(&v).(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, &ValidationError{Name: name, Err: err}
		}
	}
	data, err := c.codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrEncode, name, err)
	}
	return data, nil
}

// Get returns name's value, read linearizably: ErrNotFound if there is
// none, a *DecodeError (with the value's Meta) if it does not decode.
func (c *Config[T]) Get(ctx context.Context, name string) (T, Meta, error) {
	var zero T
	key, err := c.Key(name)
	if err != nil {
		return zero, Meta{}, err
	}
	resp, err := c.node.Get(ctx, []byte(key))
	if err != nil {
		return zero, Meta{}, err
	}
	if len(resp.KVs) == 0 {
		return zero, Meta{Name: name}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	kv := &resp.KVs[0]
	v, err := c.decode(name, kv)
	return v, metaOf(name, kv), err
}

// Put validates, encodes and stores v under name, and returns its Meta.
func (c *Config[T]) Put(ctx context.Context, name string, v T) (Meta, error) {
	key, err := c.Key(name)
	if err != nil {
		return Meta{}, err
	}
	data, err := c.encode(name, v)
	if err != nil {
		return Meta{}, err
	}
	resp, err := c.node.Txn(ctx).Then(kvstore.OpPut([]byte(key), data), kvstore.OpGet([]byte(key))).Commit()
	if err != nil {
		return Meta{}, err
	}
	return metaOf(name, &resp.Responses[1].Get.KVs[0]), nil
}

// Update is a compare-and-swap of name's value: it reads the value (the
// zero T if there is none), passes it to fn, and stores fn's result only
// if nobody changed the value in between; otherwise it reads again and
// calls fn again, at most WithRetries more times (then ErrConflict). fn
// must have no other effects, since it may run more than once. An error
// from fn, validation or encoding ends Update with nothing written; so
// does a stored value that does not decode (a *DecodeError: overwrite it
// with Put). It returns the value stored and its Meta.
//
// A write whose outcome is unknown (kvstore.ErrOutcomeUnknown) is not
// tried again: it may have happened, and fn's change would be made twice.
func (c *Config[T]) Update(ctx context.Context, name string, fn func(T) (T, error)) (T, Meta, error) {
	var zero T
	key, err := c.Key(name)
	if err != nil {
		return zero, Meta{}, err
	}
	resp, err := c.node.Get(ctx, []byte(key))
	if err != nil {
		return zero, Meta{}, err
	}
	current := resp.KVs
	for range c.retries + 1 {
		var old T
		var rev int64
		if len(current) > 0 {
			kv := &current[0]
			if old, err = c.decode(name, kv); err != nil {
				return zero, metaOf(name, kv), err
			}
			rev = kv.ModRevision
		}
		v, err := fn(old)
		if err != nil {
			return zero, Meta{}, err
		}
		data, err := c.encode(name, v)
		if err != nil {
			return zero, Meta{}, err
		}
		resp, err := c.node.Txn(ctx).
			If(kvstore.Compare(kvstore.ModRevision([]byte(key)), "=", rev)).
			Then(kvstore.OpPut([]byte(key), data), kvstore.OpGet([]byte(key))).
			Else(kvstore.OpGet([]byte(key))).
			Commit()
		if err != nil {
			return zero, Meta{}, err
		}
		if resp.Succeeded {
			return v, metaOf(name, &resp.Responses[1].Get.KVs[0]), nil
		}
		current = resp.Responses[0].Get.KVs
	}
	return zero, Meta{}, fmt.Errorf("%w: %q, %d attempts", ErrConflict, name, c.retries+1)
}

// Delete deletes name's value and reports whether there was one.
func (c *Config[T]) Delete(ctx context.Context, name string) (bool, error) {
	key, err := c.Key(name)
	if err != nil {
		return false, err
	}
	resp, err := c.node.Delete(ctx, []byte(key))
	if err != nil {
		return false, err
	}
	return resp.Deleted > 0, nil
}

// List returns every name's value in name order, read linearizably at one
// revision, which it returns too. Values that do not decode are listed
// with a *DecodeError. Keys under the prefix that are not names (deeper
// paths) are left out.
func (c *Config[T]) List(ctx context.Context) ([]Item[T], int64, error) {
	resp, err := c.node.Get(ctx, []byte(c.prefix), kvstore.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	return c.items(resp.KVs), resp.Header.Revision, nil
}

func (c *Config[T]) items(kvs []kvstore.KeyValue) []Item[T] {
	var items []Item[T]
	for i := range kvs {
		kv := &kvs[i]
		name, ok := c.name(kv.Key)
		if !ok {
			continue
		}
		v, err := c.decode(name, kv)
		items = append(items, Item[T]{Name: name, Value: v, Meta: metaOf(name, kv), Err: err})
	}
	return items
}
