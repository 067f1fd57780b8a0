package transport

import "sync"

// lifecycle is what Close needs in both transports: a closed flag and a
// WaitGroup of the work Close waits for, the flag guarded by mu so that no
// work is added once Close has begun. mu is never held while blocking.
type lifecycle struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// enter registers work on the caller's goroutine that Close must wait for;
// the caller calls wg.Done when it ends. It reports false if closed.
func (l *lifecycle) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

// spawn runs f on a goroutine that Close waits for. It reports false,
// without running f, if closed.
func (l *lifecycle) spawn(f func()) bool {
	if !l.enter() {
		return false
	}
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// shut marks the transport closed and reports whether this call did.
func (l *lifecycle) shut() (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first = !l.closed
	l.closed = true
	return first
}
