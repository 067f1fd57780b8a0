package kvstore

import (
	"bytes"
	"log"
	"os"
	"testing"
)

// The package's init has run by the time a test does: the standard logger
// must be as Go starts it, not capnslog's (which raft-wal links in).
func TestImportLeavesStandardLoggerAsGoStartsIt(t *testing.T) {
	if w := log.Writer(); w != os.Stderr {
		t.Errorf("log.Writer() = %T, want os.Stderr", w)
	}
	if got := log.Flags(); got != log.LstdFlags {
		t.Errorf("log.Flags() = %d, want log.LstdFlags (%d)", got, log.LstdFlags)
	}
	if got := log.Prefix(); got != "" {
		t.Errorf("log.Prefix() = %q, want \"\"", got)
	}
}

// A writer some other package chose is not capnslog's, and is kept, flags
// and all.
func TestRestoreStdLoggerKeepsAnotherWriter(t *testing.T) {
	w, flags := log.Writer(), log.Flags()
	t.Cleanup(func() {
		log.SetOutput(w)
		log.SetFlags(flags)
	})
	var buf bytes.Buffer
	log.SetOutput(&buf)
	log.SetFlags(0)

	restoreStdLogger()

	if got := log.Writer(); got != &buf {
		t.Errorf("log.Writer() = %T, want the host's *bytes.Buffer", got)
	}
	if got := log.Flags(); got != 0 {
		t.Errorf("log.Flags() = %d, want the host's 0", got)
	}
}
