//go:build !unix

package proccpu

import "time"

// Used is 0 where getrusage is missing: a CPU column then reads 0.
func Used() time.Duration { return 0 }
