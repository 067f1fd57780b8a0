package kvstore

import (
	"log"
	"os"
	"reflect"
)

// capnslogPath is the package whose init takes over the standard library's
// default logger. raft-wal links it into every program that imports kvstore
// (raft-wal/fs -> coreos/etcd/pkg/fileutil -> coreos/pkg/capnslog; see
// DESIGN.md, "Dependencies"): it clears the logger's flags and points its
// output at capnslog's own formatter, so a host's log.Printf, and
// slog.Default's output (which goes through the standard logger), comes out
// as "2006-01-02 15:04:05.000000 I | msg", or goes to the systemd journal
// when the process's parent is PID 1.
const capnslogPath = "github.com/coreos/pkg/capnslog"

// init gives the standard logger back what Go starts it with, so importing
// kvstore leaves a host's log and slog.Default output as it was. Go runs
// capnslog's init before this one (kvstore imports it, through raft-wal),
// and the host's main package's after it, so a host that configures the
// standard logger in main still has the last word.
func init() {
	restoreStdLogger()
}

// restoreStdLogger undoes capnslog's takeover of the standard logger: the
// output goes back to os.Stderr and, if they are still the zero capnslog
// set, the flags back to log.LstdFlags. It changes nothing unless the
// output is still capnslog's writer, so a writer that another package set
// after capnslog's init is left alone.
func restoreStdLogger() {
	w := log.Writer()
	if w == nil || reflect.TypeOf(w).PkgPath() != capnslogPath {
		return
	}
	log.SetOutput(os.Stderr)
	if log.Flags() == 0 {
		log.SetFlags(log.LstdFlags)
	}
}
