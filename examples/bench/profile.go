package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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
// preload. Each window gets its own CPU profile: the -cpuprofile name
// itself when the program times one window, else the name with
// ".<workload>.run<N>" before its extension. Block and mutex profiles are
// sampled in the windows only and written once at exit. The allocation
// profile (-memprofile) is the whole program's, written at exit: Go keeps
// one cumulative record of allocations, so start-up and preload are in it
// too (small beside a timed window of writes).
type profiler struct {
	cpu, block, mutex, mem string
	windows                int // how many windows the program will time
	cpuFile                *os.File
}

func (p *profiler) start(label string) error {
	if p.block != "" {
		runtime.SetBlockProfileRate(blockProfileRate)
	}
	if p.mutex != "" {
		runtime.SetMutexProfileFraction(mutexProfileFraction)
	}
	if p.cpu == "" {
		return nil
	}
	name := p.cpu
	if p.windows > 1 {
		ext := filepath.Ext(name)
		name = strings.TrimSuffix(name, ext) + "." + label + ext
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.cpuFile = f
	return nil
}

func (p *profiler) stop() error {
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
	if p.cpuFile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.cpuFile.Close()
	p.cpuFile = nil
	return err
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
