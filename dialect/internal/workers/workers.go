// Package workers owns the bounded worker pools that dialects use for
// blocking work (store operations, calls to a game's backend) so that it
// never runs on an event loop: the work comes back to its connection
// through dialect.Conn.Do.
//
// Concurrency: every method is safe from any goroutine; Go never blocks
// (it refuses when the queue is full), so event loops may call it.
package workers

import "sync"

// Pool runs functions on at most n goroutines, started when work waits
// and gone when none does, fed by a queue of at most queue functions:
// with every goroutine busy, n functions run and queue more wait.
type Pool struct {
	n, max int

	mu       sync.Mutex // guards the following
	jobs     []func()
	running  int // goroutines
	inflight int // functions taken and not finished: queued or running
	closed   bool
	idle     sync.Cond // signalled when running drops to 0
}

// New returns a pool of up to n goroutines and a queue of queue functions.
func New(n, queue int) *Pool {
	w := &Pool{n: n, max: queue}
	w.idle.L = &w.mu
	return w
}

// Go queues fn; false when n functions run and queue more wait, or the
// pool is closed. Never blocks.
func (w *Pool) Go(fn func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.inflight >= w.n+w.max {
		return false
	}
	w.inflight++
	w.jobs = append(w.jobs, fn)
	if w.running < w.n {
		w.running++
		go w.work()
	}
	return true
}

func (w *Pool) work() {
	w.mu.Lock()
	for len(w.jobs) > 0 {
		fn := w.jobs[0]
		w.jobs[0] = nil
		w.jobs = w.jobs[1:]
		w.mu.Unlock()
		fn()
		w.mu.Lock()
		w.inflight--
	}
	w.jobs = nil
	if w.running--; w.running == 0 {
		w.idle.Broadcast()
	}
	w.mu.Unlock()
}

// Close refuses new work and waits for the queued work to finish.
func (w *Pool) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for w.running > 0 {
		w.idle.Wait()
	}
}
