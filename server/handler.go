package server

import (
	"net"
	"strconv"

	"github.com/panjf2000/gnet/v2"

	"partyline/codec"
	"partyline/internal/security"
)

// overCapacity answers a connection over --max-connections.
var overCapacity = httpResponse(503, "server at capacity: try again later")

// handler is the gnet.EventHandler.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.s.booted(eng)
	return gnet.None
}

func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	if s.draining.Load() {
		return nil, gnet.Close
	}
	l := s.loopOf(gc.EventLoop())
	if !s.admit(l) {
		s.metrics.closeReason(0, "over_capacity")
		security.Record("handshake_refused_over_capacity", "remote", gc.RemoteAddr())
		return overCapacity, gnet.Close
	}
	c := &conn{gc: gc, loop: l, srv: s, id: s.nextID.Add(1), bind: s.bindingOf(gc.LocalAddr())}
	gc.SetContext(c)
	l.conns[c] = struct{}{}
	c.deadline = s.now() + int64(s.cfg.HandshakeWait)
	c.rearm()
	l.addPending(c)
	s.metrics.accepted.Inc()
	s.metrics.conns.Inc()
	s.open.Add(1)
	return nil, gnet.None
}

func (h *handler) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	prev := c.state
	c.state = stateClosed
	c.loop.wheel.remove(c)
	c.loop.removePending(c)
	delete(c.loop.conns, c)
	c.mu.Lock()
	c.closed = true
	q := c.q
	qBytes := c.qBytes
	c.q, c.tasks, c.qBytes = nil, nil, 0
	sent := c.closeCode != 0
	c.mu.Unlock()
	releaseAll(q)
	c.srv.outTotal.Add(-int64(qBytes) - c.acct)
	c.acct = 0
	c.loop.removeBacklog(c)
	c.releaseAddr()
	if prev == stateOpen && !sent {
		c.srv.metrics.closeReason(0, "peer")
	}
	c.endSession()
	c.srv.metrics.conns.Dec()
	c.srv.open.Add(-1)
	if prev != stateHandshake {
		c.srv.upgraded.Add(-1)
	}
	return gnet.None
}

func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	c.loop.drainFans() // big rooms' announcements before more input (fanout.go)
	buf, _ := gc.Peek(-1)
	c.heard = true
	done := 0
	if c.state == stateHandshake {
		if c.accepting { // a deferred decision is pending: keep the bytes
			if len(buf) > c.srv.cfg.MaxHandshake+c.srv.cfg.MaxMessageSize {
				_, _ = gc.Discard(-1)
				return gnet.Close
			}
			return gnet.None
		}
		res, n := c.handshake(buf)
		switch res {
		case hsWait:
			return gnet.None
		case hsRefused:
			_, _ = gc.Discard(-1)
			return gnet.Close
		}
		done = n
	}
	if c.readFrames(buf, done) {
		return gnet.Close
	}
	return gnet.None
}

// readFrames decodes and handles the frames in buf[done:], discards what it
// consumed, and reports whether to hang up. Loop only.
func (c *conn) readFrames(buf []byte, done int) (hangUp bool) {
	boundary := false // a message (or a control frame outside one) completed
	for done < len(buf) && c.state != stateClosed {
		if c.dec.MaxMessage < 0 { // broken stream after a protocol error: drop input
			done = len(buf)
			break
		}
		n, ev, err := c.dec.Next(buf[done:])
		if err != nil {
			ce := err.(*codec.CloseError)
			c.dec.MaxMessage = -1
			done = len(buf)
			c.flush(c.loop) // replies to earlier messages go out before the close
			// Failing the connection (RFC 6455 7.1.7): after our close
			// frame nothing more is read, not even the peer's close, so
			// the socket closes as soon as the frame is written.
			c.fail(ce.Code, ce.Reason, false)
			hangUp = c.state == stateClosing && c.written()
			break
		}
		if n == 0 {
			break
		}
		done += n
		if !c.dec.InMessage() {
			boundary = true
		}
		if c.event(ev) {
			hangUp = true
			break
		}
	}
	if c.state != stateClosed && done > 0 { // gnet's Discard(0) discards everything
		_, _ = c.gc.Discard(done)
	}
	c.dec.Release() // an inflated message's buffer goes back to its pool
	if c.state == stateOpen && !hangUp && c.dec.MaxMessage >= 0 {
		c.watchMessage(boundary, done < len(buf) || c.dec.InMessage())
	}
	return hangUp
}

// event handles one decoded frame and reports whether to hang up. Loop only.
func (c *conn) event(ev codec.Event) (hangUp bool) {
	switch ev.Kind {
	case codec.KindText, codec.KindBinary:
		if c.state != stateOpen || c.closeReq.Load() {
			return false
		}
		c.srv.metrics.framesIn.Inc()
		c.srv.metrics.bytesIn.Add(float64(len(ev.Payload)))
		if !c.admitMessage(len(ev.Payload)) {
			return false
		}
		c.sess.OnMessage(ev.Kind, ev.Payload)
	case codec.KindPing:
		if c.state == stateOpen {
			var b [codec.MaxControlPayload + 2]byte
			c.writeNow(codec.AppendFrame(b[:0], true, codec.OpPong, ev.Payload))
		}
	case codec.KindClose:
		if c.state == stateOpen {
			c.flush(c.loop) // replies to earlier messages go out before the close
		}
		if c.state == stateOpen {
			var b [codec.MaxControlPayload + 2]byte
			code := ev.CloseCode
			if code == codec.CloseNoStatus {
				code = 0
			}
			c.closeReq.Store(true)
			c.mu.Lock()
			c.closeCode = codec.CloseNormal // nothing more may be queued
			c.mu.Unlock()
			c.writeNow(codec.AppendClose(b[:0], code, ""))
			c.srv.metrics.closeReason(0, "peer")
		}
		return true
	}
	return false
}

// bindingOf finds the listener a connection arrived on.
func (s *Server) bindingOf(a net.Addr) *binding {
	if ta, ok := a.(*net.TCPAddr); ok {
		if b, ok := s.bindings[strconv.Itoa(ta.Port)]; ok {
			return b
		}
	}
	return nil
}
