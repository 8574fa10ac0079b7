package cluster

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// cleanupWorkers is the number of goroutines running clean-ups.
const cleanupWorkers = 4

// cleanupTries is how often a clean-up that fails with an error other than
// NATS being unreachable is tried before it is given up (logged and
// counted as dropped, reason "cleanup_failed"): such an error (a damaged
// record, a permission) does not go away by waiting.
const cleanupTries = 8

// cleanups is the node's queue of clean-ups: the shared-state changes that
// must happen even when nobody waits for them (a membership undone after
// its connection closed, a claim released). Each is a function that
// reports an error to be tried again; one that fails while NATS is
// unreachable is retried with a growing back-off (up to 5 s) until it
// succeeds, however long that takes. Nothing is dropped for lack of room:
//
//   - Cleanup never blocks and never refuses (its callers include event
//     loops and OnClose).
//   - The bound is enforced where new clean-ups come from: while more than
//     Config.CleanupQueue are waiting, Node.Go refuses new cluster work
//     (the joins, creates and claims that would create more of them; their
//     clients hear "busy"). What the queue can hold beyond the bound is what
//     the operations admitted before it filled can still add: a few per
//     operation of the worker queue (Config.Queue) and of the connections
//     with one in flight.
//
// At Stop the queue gets the same few seconds as the worker queue; what is
// left then is logged, counted (reason "cleanup_at_stop"), and left to
// the other nodes' reapers: Stop deletes the lease, and the node that
// reaps it removes every entry this node held.
type cleanups struct {
	n   *Node
	max int

	mu    sync.Mutex // guards the following
	ready []*cleanupItem
	later laterHeap // waiting for their back-off, soonest first
	wake  chan struct{}

	pending atomic.Int64 // clean-ups not done yet (queued, backing off or running)

	done    atomic.Int64 // clean-ups that succeeded
	retried atomic.Int64 // failed runs that were queued again
}

type cleanupItem struct {
	fn    func() error
	tries int
	at    time.Time // not before (later only)
}

func newCleanups(n *Node, max int) *cleanups {
	return &cleanups{n: n, max: max, wake: make(chan struct{}, 1)}
}

// Cleanup queues fn, a clean-up of shared state that blocks on NATS; it
// runs on a clean-up goroutine and is run again (after a back-off) for as
// long as it returns an error while NATS is unreachable, so it must be
// idempotent: re-read and re-check what it changes. Never blocks, never
// refuses: see cleanups for the bound.
func (n *Node) Cleanup(fn func() error) {
	n.cleanup.push(&cleanupItem{fn: fn})
}

func (q *cleanups) push(it *cleanupItem) {
	if q.n.ctx.Err() != nil { // stopped: no worker will run it
		q.n.drops.add(dropCleanupStop, 1)
		q.n.log.Warn("cluster: clean-up queued after stop, not done (the reaper of this node removes its entries)")
		return
	}
	q.pending.Add(1)
	q.mu.Lock()
	q.ready = append(q.ready, it)
	q.mu.Unlock()
	q.signal()
}

func (q *cleanups) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// len is the number of clean-ups not yet done (waiting, backing off or
// running).
func (q *cleanups) len() int { return int(q.pending.Load()) }

// full reports whether more clean-ups wait than the bound. Lock-free.
func (q *cleanups) full() bool { return q.pending.Load() > int64(q.max) }

func (q *cleanups) start() {
	for i := 0; i < cleanupWorkers; i++ {
		q.n.wg.Add(1)
		go q.work()
	}
}

// take returns the next item to run, or nil and how long to wait.
func (q *cleanups) take(now time.Time) (*cleanupItem, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	next := time.Hour
	if len(q.later) > 0 {
		if d := q.later[0].at.Sub(now); d > 0 {
			next = d
		} else {
			return heap.Pop(&q.later).(*cleanupItem), 0
		}
	}
	if len(q.ready) > 0 {
		it := q.ready[0]
		q.ready[0] = nil
		q.ready = q.ready[1:]
		return it, 0
	}
	return nil, next
}

func (q *cleanups) work() {
	n := q.n
	defer n.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		it, wait := q.take(time.Now())
		if it == nil {
			t.Reset(wait)
			select {
			case <-n.ctx.Done():
				return
			case <-q.wake:
			case <-t.C:
			}
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			continue
		}
		err := it.fn()
		if err == nil {
			q.pending.Add(-1)
			q.done.Add(1)
			continue
		}
		it.tries++
		switch {
		case n.stopped.Load() && n.ctx.Err() != nil:
			q.pending.Add(-1)
			n.drops.add(dropCleanupStop, 1)
			n.log.Warn("cluster: clean-up not done at stop (the reaper of this node removes its entries)", "err", err)
		case !unreachable(err) && n.nc.IsConnected() && it.tries >= cleanupTries:
			q.pending.Add(-1)
			n.drops.add(dropCleanupFailed, 1)
			n.log.Error("cluster: clean-up failed, given up", "tries", it.tries, "err", err)
		default:
			if it.tries == 1 {
				n.log.Warn("cluster: clean-up failed, retrying", "err", err)
			}
			q.retried.Add(1)
			it.at = time.Now().Add(retryDelay(it.tries))
			q.mu.Lock()
			heap.Push(&q.later, it)
			q.mu.Unlock()
			q.signal()
		}
	}
}

// drain waits up to d for the queue to empty.
func (q *cleanups) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for q.len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// abandon counts and logs what is left at stop.
func (q *cleanups) abandon() {
	q.mu.Lock()
	left := len(q.ready) + len(q.later)
	q.ready, q.later = nil, nil
	q.mu.Unlock()
	q.pending.Add(-int64(left))
	if left > 0 {
		q.n.drops.add(dropCleanupStop, int64(left))
		q.n.log.Warn("cluster: clean-ups not done at stop (the reaper of this node removes its entries)", "count", left)
	}
}

// laterHeap orders clean-ups waiting for a retry by time (container/heap).
type laterHeap []*cleanupItem

func (h laterHeap) Len() int           { return len(h) }
func (h laterHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h laterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *laterHeap) Push(x any)        { *h = append(*h, x.(*cleanupItem)) }
func (h *laterHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

// retryDelay is the back-off before try number tries (1, 2, ...) of a
// failed write: 50 ms doubling up to 5 s.
func retryDelay(tries int) time.Duration {
	d := 50 * time.Millisecond << min(tries-1, 7)
	return min(d, 5*time.Second)
}

// unreachable reports whether err says NATS (or JetStream) did not answer
// in time or the connection is down: worth retrying for as long as it
// takes.
func unreachable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, errTooManyConflicts)
}
