package pending

import (
	"sync"
	"testing"
)

// TestOnLoopAnsweredAtOnce: a callback made before start returns runs
// its follow-up on the caller, after start, and never through do.
func TestOnLoopAnsweredAtOnce(t *testing.T) {
	var order []string
	OnLoop(func(func()) { t.Fatal("the follow-up went through do") }, func(then func(func())) {
		then(func() { order = append(order, "follow-up") })
		order = append(order, "start returns")
	})
	order = append(order, "OnLoop returned")
	if len(order) != 3 || order[0] != "start returns" || order[1] != "follow-up" {
		t.Fatalf("order %v, want start returns, follow-up, OnLoop returned", order)
	}
}

// TestOnLoopAnsweredLater: a callback made after start returned hands
// the follow-up to do, from the callback's goroutine.
func TestOnLoopAnsweredLater(t *testing.T) {
	var then func(func())
	var queued []func()
	OnLoop(func(fn func()) { queued = append(queued, fn) }, func(th func(func())) { then = th })
	ran := false
	done := make(chan struct{})
	go func() { then(func() { ran = true }); close(done) }()
	<-done
	if len(queued) != 1 || ran {
		t.Fatalf("%d follow-ups queued (ran: %v), want 1 queued, not run", len(queued), ran)
	}
	queued[0]()
	if !ran {
		t.Fatal("the queued follow-up is not the one given to then")
	}
}

// TestOnLoopRace: whether the callback comes before or after start
// returns, the follow-up runs exactly once (go test -race).
func TestOnLoopRace(t *testing.T) {
	for range 200 {
		var mu sync.Mutex
		runs := 0
		var wg sync.WaitGroup
		wg.Add(1)
		OnLoop(func(fn func()) { go fn() }, func(then func(func())) {
			go then(func() { mu.Lock(); runs++; mu.Unlock(); wg.Done() })
		})
		wg.Wait()
		mu.Lock()
		n := runs
		mu.Unlock()
		if n != 1 {
			t.Fatalf("follow-up ran %d times", n)
		}
	}
}
