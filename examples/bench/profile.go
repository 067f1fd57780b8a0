package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
)

// Sampling of the block and mutex profiles while they are on: every
// blocking event of 10µs or more (shorter ones in proportion), one
// contended mutex in 10.
const (
	blockProfileRate     = 10_000
	mutexProfileFraction = 10
)

// profiler profiles the timed windows only, not cluster start-up or
// preload. Each window gets its own CPU profile and execution trace: the
// -cpuprofile (-trace) name itself when the program times one window, else
// the name with ".<workload>.run<N>" before its extension. Block and mutex profiles are
// sampled in the windows only and written once at exit. The allocation
// profile (-memprofile) is the whole program's, written at exit: Go keeps
// one cumulative record of allocations, so start-up and preload are in it
// too (small beside a timed window of writes).
type profiler struct {
	cpu, trace, block, mutex, mem string
	windows                       int // how many windows the program will time
	cpuFile, traceFile            *os.File
}

// startWindow creates the file named name for the window label and
// starts writing a profile or trace to it with begin.
func (p *profiler) startWindow(name, label string, begin func(io.Writer) error) (*os.File, error) {
	if p.windows > 1 {
		ext := filepath.Ext(name)
		name = strings.TrimSuffix(name, ext) + "." + label + ext
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	if err := begin(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (p *profiler) start(label string) error {
	if p.block != "" {
		runtime.SetBlockProfileRate(blockProfileRate)
	}
	if p.mutex != "" {
		runtime.SetMutexProfileFraction(mutexProfileFraction)
	}
	var err error
	if p.trace != "" {
		if p.traceFile, err = p.startWindow(p.trace, label, trace.Start); err != nil {
			return err
		}
	}
	if p.cpu != "" {
		p.cpuFile, err = p.startWindow(p.cpu, label, pprof.StartCPUProfile)
	}
	return err
}

func (p *profiler) stop() error {
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
	var errs []error
	if p.traceFile != nil {
		trace.Stop()
		errs = append(errs, p.traceFile.Close())
		p.traceFile = nil
	}
	if p.cpuFile != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpuFile.Close())
		p.cpuFile = nil
	}
	return errors.Join(errs...)
}

// writeExit writes the block, mutex and allocation profiles, if asked for.
func (p *profiler) writeExit() error {
	var errs []error
	if p.mem != "" {
		runtime.GC() // the profile records allocations up to the latest GC
	}
	for _, w := range []struct{ name, path string }{{"block", p.block}, {"mutex", p.mutex}, {"allocs", p.mem}} {
		if w.path == "" {
			continue
		}
		f, err := os.Create(w.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, pprof.Lookup(w.name).WriteTo(f, 0), f.Close())
	}
	return errors.Join(errs...)
}
