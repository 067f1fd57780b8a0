//go:build unix

package proccpu

import (
	"syscall"
	"time"
)

// Used returns the CPU time the process has used so far, user and system;
// 0 if the system will not say.
func Used() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
