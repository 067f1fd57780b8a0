//go:build !unix

package main

import "time"

// cpuTime is 0 where getrusage is missing: the cpu column then reads 0.
func cpuTime() time.Duration { return 0 }
