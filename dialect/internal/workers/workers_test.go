package workers

import (
	"sync/atomic"
	"testing"
)

// TestPoolBound: a pool of n goroutines and queue slots takes n+queue
// functions, however far its goroutines got, no more until one finishes;
// after Close it takes none and every taken function has run.
func TestPoolBound(t *testing.T) {
	for _, tc := range []struct{ n, queue int }{{1, 1}, {2, 2}, {4, 0}, {1, 8}} {
		p := New(tc.n, tc.queue)
		release := make(chan struct{})
		done := make(chan struct{}, 64)
		var ran atomic.Int64
		job := func() { <-release; ran.Add(1); done <- struct{}{} }
		for i := 0; i < tc.n+tc.queue; i++ {
			if !p.Go(job) {
				t.Fatalf("n=%d queue=%d: function %d refused", tc.n, tc.queue, i)
			}
		}
		if p.Go(job) {
			t.Fatalf("n=%d queue=%d: took more than %d", tc.n, tc.queue, tc.n+tc.queue)
		}
		release <- struct{}{}
		<-done
		// One finished: room for exactly one more once its goroutine has
		// counted it (it may still be between functions).
		for !p.Go(job) {
			p.mu.Lock()
			inflight := p.inflight
			p.mu.Unlock()
			if inflight < tc.n+tc.queue {
				t.Fatalf("refused with %d in flight", inflight)
			}
		}
		if p.Go(job) {
			t.Fatal("took one more than the bound after a function finished")
		}
		close(release)
		p.Close()
		if got := ran.Load(); got != int64(tc.n+tc.queue+1) {
			t.Fatalf("ran %d, want %d", got, tc.n+tc.queue+1)
		}
		if p.Go(job) {
			t.Fatal("a closed pool took a function")
		}
	}
}
