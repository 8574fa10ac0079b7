package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"partyline/routing"
)

// iovMax bounds one writev call (Linux IOV_MAX is 1024).
const iovMax = 1024

// loop is partyline's state for one gnet event loop: the connections with
// pending output, and the timer wheel.
type loop struct {
	el  gnet.EventLoop
	srv *Server

	mu        sync.Mutex // guards dirty and fans
	dirty     []*conn
	fans      []*routing.Fanout // big rooms' broadcasts to this loop's members (fanout.go)
	fanSpare  []*routing.Fanout // loop only
	drained   []*conn           // loop only: scratch of drainFans
	fanQueued atomic.Bool       // fans is not empty
	spare     []*conn           // loop only
	scheduled atomic.Bool       // a flush task is queued on the loop
	notBefore atomic.Int64      // Unix ns: no flush pass before (a fan-out pass paces the next; see flush)

	// loop only
	iov       [][]byte
	framesOut int // counted during a flush pass, added to metrics once
	bytesOut  int
	fansOut   int // deliveries from Fanouts, added to metrics once
	fansTaken int // Fanouts queued since the last flush pass (pacing)
	hs        *hsState
	wheel     wheel
	conns     map[*conn]struct{}
	fences    int64 // the server's fence count this loop has acted on
	hsHead    *conn // pending handshakes, oldest first (pending.go)
	hsTail    *conn
	backlog   []*conn // connections with bytes in gnet's outbound buffer (budget.go)
	cands     []*conn // scratch of enforceBudget
	ticks     int

	oldestAt atomic.Int64 // handshake deadline of hsHead, 0 = none; read by other loops
	largest  atomic.Int64 // largest backlog of this loop at its last refresh; read by other loops

	flushTask gnet.RunnableFunc
	tickTask  gnet.RunnableFunc
	evictTask gnet.RunnableFunc
}

func newLoop(s *Server, el gnet.EventLoop) *loop {
	l := &loop{el: el, srv: s, conns: map[*conn]struct{}{}, hs: newHS(s)}
	l.wheel.init(s.start)
	l.flushTask = func(context.Context) error { l.flush(); return nil }
	l.tickTask = func(context.Context) error { l.tick(); return nil }
	l.evictTask = func(context.Context) error { l.evictOldest(); s.evicting.Add(-1); return nil }
	return l
}

// schedule files c for the next flush and wakes the loop once per pass.
// Any goroutine; the caller holds c.mu.
func (l *loop) schedule(c *conn) {
	l.mu.Lock()
	l.dirty = append(l.dirty, c)
	l.mu.Unlock()
	l.wake()
}

// wake queues a flush pass unless one is queued already, at notBefore if
// that is still ahead. Any goroutine.
func (l *loop) wake() {
	if !l.scheduled.Swap(true) {
		if nb := l.notBefore.Load(); nb != 0 {
			if d := nb - time.Now().UnixNano(); d > 0 {
				time.AfterFunc(time.Duration(d), l.runFlush)
				return
			}
		}
		l.runFlush()
	}
}

func (l *loop) runFlush() {
	_ = l.el.Execute(context.Background(), l.flushTask) // fails only in engine shutdown
}

// Pacing of fan-out passes: a flush pass that wrote big rooms' Fanouts
// and took at least fanPaceMin is followed by a pause as long as it took
// (at most fanPaceMax) before the next pass. Writes to a loopback
// or network socket cost ~5-10 µs each, however few bytes they carry: in
// a join storm (every join announced to thousands of members) passes run
// back to back would write each member a frame or two at a time, spend
// the core on write calls and starve handshakes and reads. With the
// pause, the loop serves its input for as long as it wrote, and the next
// pass carries everything announced meanwhile in one writev per member
// (measured: bench storm, bench/RESULTS.md). The pause never applies to
// passes without Fanouts (rooms under --fanout-min); after one, the
// loop's other connections wait for the next pass too, at most
// fanPaceMax. A big room's message arriving during the pause waits for
// it: bench bigroom (10,000 members, 10 msg/s, one loop) measured the
// last member's p99 1.13x and the CPU per delivery 0.75x of passes
// without pauses.
const (
	fanPaceMin = 2 * time.Millisecond
	fanPaceMax = 50 * time.Millisecond
)

// flush queues the frames of pending Fanouts (fanout.go), then writes
// every dirty connection's queue. Loop only.
func (l *loop) flush() {
	l.scheduled.Store(false)
	l.mu.Lock()
	list := l.dirty
	l.dirty = l.spare[:0]
	fanning := len(l.fans) > 0
	l.mu.Unlock()
	var start time.Time
	if fanning || l.fansTaken > 0 { // fansTaken: drainFans queued some since the last pass
		start = time.Now()
		list = l.runFans(list)
	}
	for _, c := range list {
		c.flush(l)
	}
	if !start.IsZero() {
		if took := time.Since(start); took >= fanPaceMin {
			l.notBefore.Store(time.Now().Add(min(took, fanPaceMax)).UnixNano())
		} else {
			l.notBefore.Store(0)
		}
		l.fansTaken = 0
	}
	clear(list)
	l.spare = list
	if l.framesOut > 0 {
		l.srv.metrics.framesOut.Add(float64(l.framesOut))
		l.srv.metrics.bytesOut.Add(float64(l.bytesOut))
		l.framesOut, l.bytesOut = 0, 0
	}
	if l.fansOut > 0 {
		l.srv.metrics.fanout.Add(float64(l.fansOut))
		l.fansOut = 0
	}
}

// write sends q to c with as few writev calls as IOV_MAX allows, each frame
// in the form c negotiated (compressed or not: conn.wire). Loop only.
func (l *loop) write(c *conn, q []*routing.Frame) {
	l.framesOut += len(q)
	for len(q) > 0 {
		k := min(len(q), iovMax)
		iov := l.iov[:0]
		for _, f := range q[:k] {
			b := c.wire(f)
			iov = append(iov, b)
			l.bytesOut += len(b)
		}
		_, err := c.gc.Writev(iov)
		clear(iov)
		l.iov = iov[:0]
		for _, f := range q[:k] {
			f.Release()
		}
		q = q[k:]
		if err != nil { // gnet has closed the connection
			releaseAll(q)
			return
		}
	}
	c.account()
}

// tick advances the timer wheel and the drain. Loop only.
func (l *loop) tick() {
	now := time.Now().UnixNano()
	l.wheel.advance(now, func(c *conn) { c.onTimer(now) })
	l.ticks++
	l.budget()
	if l.srv.draining.Load() {
		l.drainStep(now)
	}
	if f := l.srv.fences.Load(); f != l.fences {
		l.fences = f
		l.fence()
	}
}

// fence closes every connection of this loop with 1012 (service restart):
// the cluster took this node for dead and removed their shared state
// (memberships, names, counts), so they must reconnect and join again.
// Connections opened afterwards are unaffected, even those this loop
// accepted before its tick came round. Loop only.
func (l *loop) fence() {
	last := l.srv.fencedID.Load()
	for c := range l.conns {
		if c.id <= last {
			c.shut(1012, "cluster membership lost: reconnect")
		}
	}
}

// drainStep closes a share of this loop's connections so that all are
// closed by the end of the drain window. Loop only.
func (l *loop) drainStep(now int64) {
	left := l.srv.drainEnd.Load() - now
	n := len(l.conns)
	if n == 0 {
		return
	}
	k := n
	if left > int64(tickDur) {
		k = int((int64(n)*int64(tickDur) + left - 1) / left)
	}
	for c := range l.conns {
		if k == 0 {
			break
		}
		if left > 0 && c.lingers() {
			continue
		}
		if c.shut(1001, "going away") {
			k--
		}
	}
}
