package wsc

import (
	"time"

	"github.com/panjf2000/gnet/v2"

	"partyline/codec"
)

// handler is the gnet.EventHandler shared by all connections; the per
// connection state is the *Conn stored as the gnet context.
type handler struct {
	gnet.BuiltinEventEngine
	e *Engine
}

func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*Conn)
	c.gc = gc
	c.loop = h.e.loopOf(gc.EventLoop())
	c.dec = codec.Decoder{FromServer: true}
	c.offerDeflate = h.e.cfg.Deflate
	c.state = stHandshake
	host := c.Host
	if host == "" {
		host = c.Addr
	}
	if host == "" {
		host = h.e.cfg.Addr
	}
	// gnet writes out before returning from the open callback (or copies
	// what the socket did not take), so the loop scratch is safe here.
	c.loop.buf = c.appendRequest(c.loop.buf[:0], host)
	return c.loop.buf, gnet.None
}

func (h *handler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*Conn)
	if !ok || c.state == stClosed {
		return gnet.None
	}
	c.state = stClosed
	c.H.Close(c, err)
	return gnet.None
}

func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*Conn)
	buf, _ := gc.Peek(-1)
	now := time.Now().UnixNano()
	off := 0
	if c.state == stHandshake {
		n, status, err := c.parseResponse(buf)
		if n == 0 && err == nil {
			return gnet.None
		}
		if err != nil {
			c.Status = status
			c.state = stClosed
			c.H.Close(c, err)
			return gnet.Close
		}
		off = n
		c.state = stOpen
		c.OpenAt = now
		c.H.Open(c)
		if c.state == stClosed {
			return gnet.None
		}
	}
	for off < len(buf) && c.state < stClosed {
		n, ev, err := c.dec.Next(buf[off:])
		if err != nil {
			c.state = stClosed
			c.H.Close(c, err)
			return gnet.Close
		}
		if n == 0 {
			break
		}
		off += n
		if c.state != stOpen && c.state != stClosing {
			break
		}
		switch ev.Kind {
		case codec.KindText, codec.KindBinary:
			if c.state == stOpen {
				c.H.Message(c, ev.Payload, now)
			}
		case codec.KindPing:
			_ = c.writeFrame(codec.OpPong, ev.Payload)
		case codec.KindClose:
			c.CloseCode = ev.CloseCode
			if c.state == stOpen {
				code := ev.CloseCode
				if code == codec.CloseNoStatus {
					code = 0
				}
				c.Close(code)
			}
			discard(gc, off)
			return gnet.Close
		}
	}
	if c.state == stClosed {
		return gnet.None
	}
	discard(gc, off)
	c.dec.Release() // an inflated message's buffer goes back to its pool
	return gnet.None
}

// discard consumes n bytes. gnet's Discard(0) discards everything, so a
// pass that consumed nothing (a partial frame) must not call it.
func discard(gc gnet.Conn, n int) {
	if n > 0 {
		_, _ = gc.Discard(n)
	}
}
