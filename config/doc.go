// Package config keeps typed configuration in a kvstore cluster: a
// [Config] of T stores values of T under names, encoded by a [Codec]
// (JSON by default), validated before every write, and watched as typed
// events, where every other store hands back bytes.
//
// # Basics
//
//	type Settings struct {
//		LogLevel  string `json:"log_level"`
//		RateLimit int    `json:"rate_limit"`
//	}
//
//	func (s Settings) Validate() error { ... } // run before every write
//
//	cfg, err := config.New[Settings](node, "app/settings")
//	cfg.Put(ctx, "api", Settings{LogLevel: "info", RateLimit: 100})
//	cfg.Update(ctx, "api", func(s Settings) (Settings, error) { s.RateLimit *= 2; return s, nil })
//	w, err := cfg.Watch(ctx) // the current values, then every change
//	for ev := range w.Events() { ... ev.Name, ev.Old, ev.New ... }
//
// Each value lives in the key prefix + "/" + name, so other programs (and
// etcd-style tools) read and write it as plain bytes. Names are non-empty
// UTF-8 without "/"; keys deeper under the prefix are not names and are
// left alone.
//
// # Guarantees
//
//   - Nothing invalid is written: a bad name, a value its validator (a
//     [WithValidator] function, or T's own Validate method) refuses, or one
//     the codec cannot encode is an error before anything is sent.
//   - [Config.Update] is a compare-and-swap on the value's mod revision,
//     retried a bounded number of times when another writer got there
//     first.
//   - [Config.Watch] starts from a consistent snapshot: the values at one
//     revision R, then every change after R, none missed and none
//     repeated. [Config.WatchAfter] resumes a watch that ended (its member
//     restarted, say) from the revision it reached, on any member.
//   - A stored value that does not decode is reported as a [*DecodeError]
//     (from Get, in List's item, as an event's Err), never as a panic or a
//     silent zero value.
//
// # Caveats
//
//   - Reads and writes go through one node, linearizably, with the node's
//     guarantees; a write whose context ends, or that fails with
//     kvstore.ErrOutcomeUnknown, may still have happened.
//   - Validation runs where the value is written. A program that writes
//     the keys directly, or an older version with other rules, can store
//     values this one refuses; they decode (or fail to) like any other.
package config
