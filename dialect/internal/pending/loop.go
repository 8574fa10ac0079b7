package pending

import "sync/atomic"

// OnLoop finishes on the session's event loop an operation that reports
// through a callback: start begins it and arranges for then(fn) to be
// called once, from any goroutine, when it is done; fn then runs on the
// loop. When then comes before start returns (a single node's backplane
// answers before the call returns), fn runs at once on the caller's
// goroutine, the loop, right after start: the session goes on in the
// same turn, exactly as if nothing had been waited for. Otherwise fn goes
// through do (the connection's Conn.Do), which drops it if the
// connection closed meanwhile. Loop only.
func OnLoop(do func(func()), start func(then func(fn func()))) {
	const (
		calling  = iota // start has not returned
		returned        // start returned before then: fn goes through do
		early           // then came first: fn runs after start
	)
	var state atomic.Int32
	var next func() // written by then before its CAS, read after ours
	start(func(fn func()) {
		next = fn
		if !state.CompareAndSwap(calling, early) {
			do(fn)
		}
	})
	if !state.CompareAndSwap(calling, returned) {
		next()
	}
}

// Drop is Cancel for a session done with the op, closing or not: it runs
// the undo at once if the worker had finished (the worker runs it
// otherwise, when Finish reports false).
func (o *Op) Drop() {
	if undo := o.Cancel(); undo != nil {
		undo()
	}
}
