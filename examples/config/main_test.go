package main

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestRun runs the example end to end in virtual time and checks what the
// service saw.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out strings.Builder
		if err := run(ctx, &out); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		for _, want := range []string{
			"rate limit 100", "rate limit 200, features [burst]", "refused, nothing written",
			"service: keeping rate limit 200: config: cannot decode", "rate limit 300", "done",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})
}
