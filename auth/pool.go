package auth

import "sync"

// Pool verifies tokens off the event loops: at most workers goroutines,
// started when tokens wait and gone when none do, fed by a queue of at
// most queue tokens.
type Pool struct {
	verify  func(string) (Claims, error)
	workers int
	max     int

	mu      sync.Mutex // guards the following
	jobs    []job
	running int
	closed  bool
	idle    sync.Cond // signalled when running drops to 0
}

type job struct {
	token string
	done  func(Claims, error)
}

// NewPool returns a pool of up to workers goroutines with a queue of queue
// tokens.
func NewPool(verify func(string) (Claims, error), workers, queue int) *Pool {
	p := &Pool{verify: verify, workers: workers, max: queue}
	p.idle.L = &p.mu
	return p
}

// Verify queues token; done runs on a worker goroutine with the result.
// It reports false, without calling done, when the queue is full or the
// pool closed. Never blocks.
func (p *Pool) Verify(token string, done func(Claims, error)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.jobs) >= p.max {
		return false
	}
	p.jobs = append(p.jobs, job{token, done})
	if p.running < p.workers {
		p.running++
		go p.work()
	}
	return true
}

func (p *Pool) work() {
	p.mu.Lock()
	for len(p.jobs) > 0 {
		j := p.jobs[0]
		p.jobs[0] = job{}
		p.jobs = p.jobs[1:]
		p.mu.Unlock()
		c, err := p.verify(j.token)
		j.done(c, err)
		p.mu.Lock()
	}
	p.jobs = nil
	if p.running--; p.running == 0 {
		p.idle.Broadcast()
	}
	p.mu.Unlock()
}

// Close refuses new tokens and waits for the queued ones to finish.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for p.running > 0 {
		p.idle.Wait()
	}
}
