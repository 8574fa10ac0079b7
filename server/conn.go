package server

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"partyline/codec"
	"partyline/dialect"
	"partyline/internal/security"
	"partyline/routing"
)

// Connection states (loop only).
const (
	stateHandshake uint8 = iota
	stateOpen
	stateClosing // our close frame is out; waiting for the peer's
	stateClosed
)

// conn is one client connection. Fields are grouped by who may touch them.
type conn struct {
	gc   gnet.Conn
	loop *loop
	srv  *Server
	id   uint64
	bind *binding // the listener it arrived on

	// loop only
	state     uint8
	accepting bool      // a deferred handshake decision is pending
	hsListed  bool      // in the loop's list of pending handshakes
	released  bool      // closed for the outbound budget: its backlog no longer counts
	zWin      uint8     // permessage-deflate: server_max_window_bits agreed, 0 = not negotiated
	decided   *decision // the deferred decision, for the handshake's second run
	pingSent  bool      // a ping is out and nothing has arrived since
	heard     bool      // something arrived since the last keepalive check
	dec       codec.Decoder
	sess      dialect.Session
	req       *dialect.Request
	deadline  int64 // unix nanos: handshake or close deadline, 0 = none
	nextPing  int64 // unix nanos, 0 = none
	userAt    int64 // unix nanos of the dialect's timer, 0 = none
	msgAt     int64 // unix nanos by which the message in progress must complete, 0 = none
	tPrev     *conn // timer wheel links
	tNext     *conn
	tAt       int64 // tick the conn is filed under, 0 = not filed
	hsPrev    *conn // the loop's list of pending handshakes, oldest first
	hsNext    *conn
	acct      int64 // gnet-buffered bytes counted in Server.outTotal (budget.go)
	blIdx     int   // 1 + index in loop.backlog, 0 = not there

	// loop only: abuse limits (abuse.go)
	rate     rateState  // inbound rate limits
	client   netip.Addr // the address counted for --max-connections-per-ip
	addrHeld bool       // client holds a place in the per-address count
	addrDone bool       // the handshake was counted against the per-address limits

	outBuffered atomic.Int64 // gnet's outbound bytes after the last flush
	closeReq    atomic.Bool  // Close was called: stop delivering messages

	mu        sync.Mutex // guards the following
	q         []*routing.Frame
	qBytes    int
	dirty     bool // queued in loop.dirty
	closed    bool // no more frames accepted
	closeCode uint16
	closeText string
	slow      bool // the queue overflowed: close as a slow consumer
	tasks     []func()
}

var _ dialect.Conn = (*conn)(nil)

// pingFrame is the keepalive ping: empty payload, written as is.
var pingFrame = []byte{0x89, 0}

func (c *conn) ID() uint64                { return c.id }
func (c *conn) Request() *dialect.Request { return c.req }

// Send implements routing.Sender.
func (c *conn) Send(f *routing.Frame, droppable bool) bool {
	ok, filed := c.queue(f, droppable)
	if filed {
		c.loop.schedule(c)
	}
	return ok
}

// queue is Send without waking the loop: filed reports that c has just
// become dirty and must be put in a flush pass (c.dirty is set). Any
// goroutine.
func (c *conn) queue(f *routing.Frame, droppable bool) (ok, filed bool) {
	n := f.Len()
	cap := c.srv.cfg.OutboundCap
	c.mu.Lock()
	if c.closed || c.closeCode != 0 {
		c.mu.Unlock()
		return false, false
	}
	if droppable && c.qBytes+int(c.outBuffered.Load())+n > cap/2 {
		c.mu.Unlock()
		c.srv.metrics.dropped.Inc()
		return false, false
	}
	if c.qBytes+n > cap {
		c.slow = true
		c.requestCloseLocked(codec.ClosePolicyViolation, "slow consumer")
		c.mu.Unlock()
		return false, false
	}
	f.Retain()
	c.q = append(c.q, f)
	c.qBytes += n
	filed = !c.dirty
	c.dirty = true
	c.mu.Unlock()
	c.srv.outTotal.Add(int64(n))
	return true, filed
}

// SendText implements dialect.Conn.
func (c *conn) SendText(payload []byte) {
	f := routing.NewTextFrom(payload)
	c.Send(f, false)
	f.Release()
}

// Close implements dialect.Conn.
func (c *conn) Close(code uint16, reason string) {
	c.mu.Lock()
	c.requestCloseLocked(code, reason)
	c.mu.Unlock()
}

func (c *conn) requestCloseLocked(code uint16, reason string) {
	if c.closed || c.closeCode != 0 {
		return
	}
	if code == 0 {
		code = codec.CloseNormal
	}
	c.closeCode, c.closeText = code, reason
	c.closeReq.Store(true)
	c.markDirtyLocked()
}

// Do implements dialect.Conn.
func (c *conn) Do(fn func()) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.tasks = append(c.tasks, fn)
	c.markDirtyLocked()
	c.mu.Unlock()
}

func (c *conn) markDirtyLocked() {
	if !c.dirty {
		c.dirty = true
		c.loop.schedule(c)
	}
}

// SetTimer implements dialect.Conn. Loop only.
func (c *conn) SetTimer(t time.Time) {
	if t.IsZero() {
		c.userAt = 0
	} else {
		c.userAt = t.UnixNano()
	}
	c.rearm()
}

// rearm files the connection under its earliest deadline. Loop only.
func (c *conn) rearm() {
	at := c.deadline
	for _, t := range [...]int64{c.nextPing, c.userAt, c.msgAt} {
		if t != 0 && (at == 0 || t < at) {
			at = t
		}
	}
	c.loop.wheel.set(c, at)
}

// flush writes everything queued in one writev and carries out a requested
// close. Loop only.
func (c *conn) flush(l *loop) {
	c.mu.Lock()
	q, tasks := c.q, c.tasks
	c.q, c.tasks = nil, nil
	qBytes := c.qBytes
	c.qBytes = 0
	c.dirty = false
	code, text, slow := c.closeCode, c.closeText, c.slow
	closed := c.closed
	c.mu.Unlock()
	if qBytes > 0 { // the queue's bytes leave the count; what gnet keeps is counted by write
		c.srv.outTotal.Add(-int64(qBytes))
	}

	for _, fn := range tasks {
		if c.state == stateClosed {
			break
		}
		fn()
	}
	if closed || c.state != stateOpen {
		releaseAll(q)
		return
	}
	// A consumer is slow when the backlog the kernel has not taken from
	// earlier passes is over the cap, or its queue overflowed between two
	// passes. This pass's burst is not held against a reader that keeps
	// up; memory stays under twice the cap per connection.
	if slow || c.gc.OutboundBuffered() > c.srv.cfg.OutboundCap {
		releaseAll(q)
		c.slowClose()
		return
	}
	if len(q) > 0 {
		l.write(c, q)
	}
	c.recycle(q)
	if code != 0 && c.state == stateOpen {
		c.fail(code, text, false)
	}
}

// slowClose drops a consumer that cannot keep up: nothing more is queued
// for it, the 1008 close frame goes out behind the backlog it already has
// (bounded by twice the cap), and the socket is closed when the peer
// answers or the close wait ends, whichever comes first. Loop only.
func (c *conn) slowClose() {
	c.srv.metrics.slow.Inc()
	c.fail(codec.ClosePolicyViolation, "slow consumer", false)
}

func (c *conn) recycle(q []*routing.Frame) {
	if cap(q) == 0 || cap(q) > 64 {
		return
	}
	clear(q)
	c.mu.Lock()
	if c.q == nil {
		c.q = q[:0]
	}
	c.mu.Unlock()
}

func releaseAll(q []*routing.Frame) {
	for _, f := range q {
		f.Release()
	}
}

// writeNow writes one small control frame immediately. Loop only.
func (c *conn) writeNow(b []byte) {
	if _, err := c.gc.Write(b); err == nil {
		c.srv.metrics.bytesOut.Add(float64(len(b)))
	}
}

// shut ends c for the server's own reasons (drain, fence): a handshake in
// progress is dropped, an open connection is closed with code. It reports
// false when c was already closing. Loop only.
func (c *conn) shut(code uint16, reason string) bool {
	switch c.state {
	case stateHandshake:
		c.hangUp()
	case stateOpen:
		c.fail(code, reason, false)
	default:
		return false
	}
	return true
}

// fail sends a close frame with code and moves to stateClosing; with now
// set, or when the peer's close already arrived, the socket is closed at
// once. Loop only.
func (c *conn) fail(code uint16, reason string, now bool) {
	if c.state == stateClosed {
		return
	}
	c.closeReq.Store(true)
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeText = code, reason
	}
	c.mu.Unlock()
	if c.state == stateOpen {
		var buf [codec.MaxControlPayload + 4]byte
		c.writeNow(codec.AppendClose(buf[:0], code, reason))
		c.srv.metrics.closeReason(code, reason)
		c.state = stateClosing
		c.deadline = time.Now().Add(c.srv.cfg.CloseWait).UnixNano()
		c.msgAt = 0 // only the close wait is left to time
		c.nextPing = 0
		if c.dec.MaxMessage < 0 {
			// Input is dead (a protocol error, a message timeout): the
			// peer's close will not be read, so the socket closes once
			// the close frame has left; poll for that every tick.
			c.nextPing = c.srv.now() + int64(tickDur)
		}
		c.rearm()
		// The session ends now: what is left of the socket is the close
		// handshake, and the others should not wait for it (peer_left...).
		c.endSession()
	}
	if now || c.state == stateHandshake {
		c.hangUp()
	}
}

// written reports whether everything written to the socket, the close
// frame included, has left gnet's outbound buffer for the kernel. Loop only.
func (c *conn) written() bool { return c.gc.OutboundBuffered() == 0 }

// lingers reports whether c's session asks to stay open during a drain
// (dialect.Lingerer). Loop only.
func (c *conn) lingers() bool {
	l, ok := c.sess.(dialect.Lingerer)
	return ok && c.state == stateOpen && l.Lingers()
}

// endSession runs the session's OnClose once. Loop only.
func (c *conn) endSession() {
	if sess := c.sess; sess != nil {
		c.sess = nil
		sess.OnClose()
	}
}

// hangUp closes the socket; OnClose follows. Loop only.
func (c *conn) hangUp() {
	if c.state == stateClosed {
		return
	}
	_ = c.gc.EventLoop().Close(c.gc)
}

// onTimer runs when the connection's earliest deadline has passed. Loop only.
func (c *conn) onTimer(now int64) {
	if c.deadline != 0 && now >= c.deadline {
		switch c.state {
		case stateHandshake:
			c.srv.metrics.closeReason(0, "handshake timeout")
			security.Record("handshake_refused_timeout", "remote", c.gc.RemoteAddr())
			c.hangUp()
			return
		case stateClosing:
			c.hangUp()
			return
		}
	}
	if c.state == stateClosing && c.nextPing != 0 && now >= c.nextPing {
		// A failed connection (see fail): hang up once our close frame
		// has been written, or look again next tick.
		if c.written() {
			c.hangUp()
			return
		}
		c.nextPing = now + int64(tickDur)
	}
	if c.state != stateOpen {
		c.rearm()
		return
	}
	if c.msgAt != 0 && now >= c.msgAt {
		c.messageTimeout()
		return
	}
	if c.nextPing != 0 && now >= c.nextPing {
		if c.pingSent && !c.heard {
			c.fail(codec.CloseGoingAway, "ping timeout", true)
			return
		}
		c.heard, c.pingSent = false, true
		c.writeNow(pingFrame)
		c.nextPing = now + int64(c.srv.cfg.PingInterval)
	}
	if c.userAt != 0 && now >= c.userAt {
		c.userAt = 0
		c.sess.OnTimer(time.Unix(0, now))
		if c.state != stateOpen {
			return
		}
	}
	c.rearm()
}

// watchMessage keeps msgAt, the deadline of the message in progress, after
// a read: a message that completed (boundary) clears it, and a message
// still incomplete (partial: a frame cut short, or a fragmented message
// awaiting its next fragment) that has none gets one, counted from now,
// its first byte. Every byte is activity for the keepalive, so only this
// deadline stops a peer that dribbles a message forever while the
// decoder holds its bytes. Loop only.
func (c *conn) watchMessage(boundary, partial bool) {
	old := c.msgAt
	if boundary {
		c.msgAt = 0
	}
	if partial && c.msgAt == 0 {
		c.msgAt = c.srv.now() + int64(c.srv.cfg.MessageTimeout)
	}
	if c.msgAt != old {
		c.rearm()
	}
}

// messageTimeout closes a connection whose message did not complete
// within --message-timeout with 1008. Its input is dropped from now on
// (what it buffered is freed at once); the socket is closed as soon as the
// close frame is written (or when the close wait ends). Loop only.
func (c *conn) messageTimeout() {
	c.msgAt = 0
	c.dec.MaxMessage = -1
	if c.state == stateClosed {
		return
	}
	_, _ = c.gc.Discard(-1)
	security.Record("message_timeout", "remote", c.gc.RemoteAddr())
	c.fail(codec.ClosePolicyViolation, "message timeout", false)
	if c.state == stateClosing && c.written() {
		c.hangUp()
	}
}
