package config_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/config"
	"github.com/kvstore/kvstore/kvtest"
)

// Settings validates itself.
type Settings struct {
	LogLevel  string   `json:"log_level"`
	RateLimit int      `json:"rate_limit"`
	Features  []string `json:"features,omitempty"`
}

func (s Settings) Validate() error {
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("unknown log level %q", s.LogLevel)
	}
	if s.RateLimit < 0 {
		return fmt.Errorf("negative rate limit %d", s.RateLimit)
	}
	return nil
}

func newConfig[T any](t *testing.T, node *kvstore.Node, opts ...config.Option) *config.Config[T] {
	t.Helper()
	c, err := config.New[T](node, "app/settings", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func revision(t *testing.T, node *kvstore.Node) int64 {
	t.Helper()
	resp, err := node.Get(context.Background(), []byte("x"), kvstore.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func TestConfigPutGetUpdateListDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		cfg := newConfig[Settings](t, c.Followers()[0])
		if _, _, err := cfg.Get(ctx, "api"); !errors.Is(err, config.ErrNotFound) {
			t.Fatalf("Get of a missing name: %v", err)
		}
		put, err := cfg.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if put.Name != "api" || put.Version != 1 || put.CreateRevision != put.Revision {
			t.Fatalf("Meta of a create: %+v", put)
		}
		v, meta, err := cfg.Get(ctx, "api")
		if err != nil || v.RateLimit != 10 || meta != put {
			t.Fatalf("Get: %+v %+v %v", v, meta, err)
		}
		v, meta, err = cfg.Update(ctx, "api", func(s Settings) (Settings, error) {
			s.RateLimit *= 3
			return s, nil
		})
		if err != nil || v.RateLimit != 30 || meta.Version != 2 || meta.CreateRevision != put.CreateRevision {
			t.Fatalf("Update: %+v %+v %v", v, meta, err)
		}
		// Update of a missing name starts from the zero value.
		if _, _, err := cfg.Update(ctx, "worker", func(s Settings) (Settings, error) {
			if s.LogLevel != "" {
				return s, fmt.Errorf("not the zero value: %+v", s)
			}
			return Settings{LogLevel: "debug"}, nil
		}); err != nil {
			t.Fatal(err)
		}
		// A key deeper under the prefix is not a name.
		if _, err := c.WaitLeader().Put(ctx, []byte("app/settings/api/extra"), []byte("x")); err != nil {
			t.Fatal(err)
		}
		items, rev, err := cfg.List(ctx)
		if err != nil || len(items) != 2 || items[0].Name != "api" || items[1].Name != "worker" || items[0].Value.RateLimit != 30 {
			t.Fatalf("List: %+v %v", items, err)
		}
		if rev < items[1].Meta.Revision {
			t.Fatalf("List revision %d before its items' %d", rev, items[1].Meta.Revision)
		}
		if deleted, err := cfg.Delete(ctx, "api"); !deleted || err != nil {
			t.Fatalf("Delete: %v %v", deleted, err)
		}
		if deleted, err := cfg.Delete(ctx, "api"); deleted || err != nil {
			t.Fatalf("Delete of a missing name: %v %v", deleted, err)
		}
		if key, _ := cfg.Key("api"); key != "app/settings/api" {
			t.Fatalf("key %q", key)
		}
	})
}

// Concurrent Updates on every member lose no change.
func TestConfigUpdateIsCompareAndSwap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		var wg sync.WaitGroup
		const writers, rounds = 6, 10
		for i := range writers {
			cfg := newConfig[Settings](t, c.Nodes()[i%3])
			wg.Go(func() {
				for range rounds {
					if _, _, err := cfg.Update(ctx, "api", func(s Settings) (Settings, error) {
						s.LogLevel = "info"
						s.RateLimit++
						return s, nil
					}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		v, _, err := newConfig[Settings](t, c.WaitLeader()).Get(ctx, "api")
		if err != nil || v.RateLimit != writers*rounds {
			t.Fatalf("after %d updates: %+v, %v", writers*rounds, v, err)
		}
	})
}

// failingCodec fails to encode.
type failingCodec struct{ config.JSON }

func (failingCodec) Marshal(any) ([]byte, error) { return nil, errors.New("no") }

// Bad input gets a typed error and writes nothing.
func TestConfigBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		node := c.WaitLeader()
		for _, tc := range []struct {
			name   string
			prefix string
			opts   []config.Option
			want   error
		}{
			{"empty prefix", "", nil, config.ErrInvalidPrefix},
			{"separator prefix", "/", nil, config.ErrInvalidPrefix},
			{"nil codec", "p", []config.Option{config.WithCodec(nil)}, config.ErrNilCodec},
			{"validator of another type", "p", []config.Option{config.WithValidator(func(int) error { return nil })}, config.ErrInvalidOption},
			{"negative retries", "p", []config.Option{config.WithRetries(-1)}, config.ErrInvalidOption},
		} {
			if _, err := config.New[Settings](node, tc.prefix, tc.opts...); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if _, err := config.New[Settings](nil, "p"); !errors.Is(err, config.ErrNilNode) {
			t.Errorf("nil node: %v", err)
		}

		before := revision(t, node)
		cfg := newConfig[Settings](t, node, config.WithValidator(func(s Settings) error {
			if len(s.Features) > 2 {
				return errors.New("too many features")
			}
			return nil
		}))
		good := Settings{LogLevel: "info"}
		update := func(Settings) (Settings, error) { return good, nil }
		for _, name := range []string{"", "a/b", "/", "\xff"} {
			if _, err := cfg.Put(ctx, name, good); !errors.Is(err, config.ErrInvalidName) {
				t.Errorf("Put %q: %v", name, err)
			}
			if _, _, err := cfg.Get(ctx, name); !errors.Is(err, config.ErrInvalidName) {
				t.Errorf("Get %q: %v", name, err)
			}
			if _, _, err := cfg.Update(ctx, name, update); !errors.Is(err, config.ErrInvalidName) {
				t.Errorf("Update %q: %v", name, err)
			}
			if _, err := cfg.Delete(ctx, name); !errors.Is(err, config.ErrInvalidName) {
				t.Errorf("Delete %q: %v", name, err)
			}
		}
		for _, bad := range []Settings{
			{LogLevel: "loud"},                                    // the type's own Validate
			{LogLevel: "info", RateLimit: -1},                     // likewise
			{LogLevel: "info", Features: []string{"a", "b", "c"}}, // WithValidator
		} {
			_, err := cfg.Put(ctx, "api", bad)
			var verr *config.ValidationError
			if !errors.Is(err, config.ErrInvalid) || !errors.As(err, &verr) || verr.Name != "api" {
				t.Errorf("Put %+v: %v", bad, err)
			}
			if _, _, err := cfg.Update(ctx, "api", func(Settings) (Settings, error) { return bad, nil }); !errors.Is(err, config.ErrInvalid) {
				t.Errorf("Update to %+v: %v", bad, err)
			}
		}
		boom := errors.New("boom")
		if _, _, err := cfg.Update(ctx, "api", func(Settings) (Settings, error) { return good, boom }); !errors.Is(err, boom) {
			t.Errorf("Update whose function fails: %v", err)
		}
		failing := newConfig[Settings](t, node, config.WithCodec(failingCodec{}))
		if _, err := failing.Put(ctx, "api", good); !errors.Is(err, config.ErrEncode) {
			t.Errorf("Put that cannot encode: %v", err)
		}
		unencodable := newConfig[chan int](t, node)
		if _, err := unencodable.Put(ctx, "api", make(chan int)); !errors.Is(err, config.ErrEncode) {
			t.Errorf("Put of a channel as JSON: %v", err)
		}
		if after := revision(t, node); after != before {
			t.Fatalf("bad input changed the store: revision %d -> %d", before, after)
		}
	})
}

// A stored value that does not decode is a *DecodeError everywhere, with
// the other values unaffected.
func TestConfigUndecodableValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 3)
		ctx := context.Background()
		node := c.Followers()[0]
		cfg := newConfig[Settings](t, node)
		if _, err := cfg.Put(ctx, "good", Settings{LogLevel: "warn"}); err != nil {
			t.Fatal(err)
		}
		raw, err := node.Put(ctx, []byte("app/settings/bad"), []byte("{not json"))
		if err != nil {
			t.Fatal(err)
		}
		_, meta, err := cfg.Get(ctx, "bad")
		var derr *config.DecodeError
		if !errors.As(err, &derr) || !errors.Is(err, config.ErrDecode) || derr.Name != "bad" || derr.Revision != raw.Header.Revision || meta.Revision != raw.Header.Revision {
			t.Fatalf("Get: %+v, %v", meta, err)
		}
		called := false
		if _, _, err := cfg.Update(ctx, "bad", func(s Settings) (Settings, error) { called = true; return s, nil }); !errors.Is(err, config.ErrDecode) || called {
			t.Fatalf("Update of an undecodable value: %v (fn called: %v)", err, called)
		}
		items, _, err := cfg.List(ctx)
		if err != nil || len(items) != 2 || !errors.Is(items[0].Err, config.ErrDecode) || items[1].Err != nil || items[1].Value.LogLevel != "warn" {
			t.Fatalf("List: %+v, %v", items, err)
		}
		// Put overwrites it.
		if _, err := cfg.Put(ctx, "bad", Settings{LogLevel: "error"}); err != nil {
			t.Fatal(err)
		}
		if v, _, err := cfg.Get(ctx, "bad"); err != nil || v.LogLevel != "error" {
			t.Fatalf("after overwrite: %+v %v", v, err)
		}
	})
}

// gobCodec is a codec other than JSON.
type gobCodec struct{}

func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}

func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// Another codec plugs in; values it wrote do not decode as JSON.
func TestConfigCodec(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := kvtest.NewCluster(t, 1)
		ctx := context.Background()
		node := c.WaitLeader()
		cfg := newConfig[Settings](t, node, config.WithCodec(gobCodec{}))
		want := Settings{LogLevel: "debug", RateLimit: 7, Features: []string{"x"}}
		if _, err := cfg.Put(ctx, "api", want); err != nil {
			t.Fatal(err)
		}
		got, _, err := cfg.Get(ctx, "api")
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("gob round trip: %+v, %v", got, err)
		}
		if _, _, err := newConfig[Settings](t, node).Get(ctx, "api"); !errors.Is(err, config.ErrDecode) {
			t.Fatalf("gob value read as JSON: %v", err)
		}
	})
}
