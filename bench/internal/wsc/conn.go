package wsc

import (
	"errors"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"partyline/codec"
)

// Handler receives one connection's events, on its event loop. Handlers
// must not block. A Handler may write to and close any connection of the
// same loop.
type Handler interface {
	// Open: the handshake completed (c.OpenAt is set).
	Open(c *Conn)
	// Message: one complete text (or binary) message. payload is valid until
	// Message returns. now is the receive time in Unix nanoseconds, taken
	// once per read.
	Message(c *Conn, payload []byte, now int64)
	// Close: the connection is gone. err says why (nil after a local
	// Close); c.CloseCode holds the code of a close frame from the server,
	// c.Opened tells whether the handshake had completed.
	Close(c *Conn, err error)
}

// Connection states.
const (
	stDialing uint8 = iota
	stHandshake
	stOpen
	stClosing // we sent or answered a close frame
	stClosed
)

// Conn is one client connection. Its exported fields are set before Dial
// (Path, H, Host) or read on the loop (the rest).
type Conn struct {
	H    Handler
	Path string // request path, e.g. "/party"
	// Addr overrides the engine's server address for this connection.
	Addr string
	// Host overrides the Host header (default: the engine's address).
	Host string

	DialAt    int64  // Unix ns when Dial started
	ConnectAt int64  // Unix ns when the TCP connect completed
	OpenAt    int64  // Unix ns when the 101 response was parsed
	CloseCode uint16 // code of the server's close frame, 0 if none
	// Status is the HTTP status of a refused handshake, 0 otherwise.
	Status int
	// Deflated: the server accepted permessage-deflate (Config.Deflate).
	Deflated bool

	gc    gnet.Conn
	loop  *Loop
	state uint8
	key   [24]byte
	dec   codec.Decoder

	offerDeflate bool // Config.Deflate, copied when the dial opens
}

// Errors reported to Handler.Close.
var (
	ErrHandshake = errors.New("wsc: bad handshake response")
	ErrRefused   = errors.New("wsc: handshake refused")
)

// Loop returns the connection's event loop (nil before the dial completed).
func (c *Conn) Loop() *Loop { return c.loop }

// Opened reports whether the handshake completed. Event loop only.
func (c *Conn) Opened() bool { return c.state >= stOpen && c.OpenAt != 0 }

// Live reports whether the connection is open and not closing. Event loop only.
func (c *Conn) Live() bool { return c.state == stOpen }

// WriteText sends one masked text frame. Event loop only. A write error
// closes the connection (Handler.Close runs before WriteText returns).
func (c *Conn) WriteText(payload []byte) error {
	return c.writeFrame(codec.OpText, payload)
}

// WriteRaw writes bytes as they are (for deliberately malformed traffic).
// Event loop only.
func (c *Conn) WriteRaw(b []byte) error {
	if c.state != stOpen {
		return errNotOpen
	}
	_, err := c.gc.Write(b)
	return err
}

var errNotOpen = errors.New("wsc: connection not open")

func (c *Conn) writeFrame(op ws.OpCode, payload []byte) error {
	if c.state != stOpen {
		return errNotOpen
	}
	l := c.loop
	l.buf = codec.AppendMaskedFrame(l.buf[:0], true, op, payload, l.mask())
	_, err := c.gc.Write(l.buf)
	return err
}

// Close sends a close frame with code (0: none) and closes the connection
// without waiting for the server's reply. Event loop only.
func (c *Conn) Close(code uint16) {
	if c.state == stOpen && code != 0 {
		l := c.loop
		var p [2]byte
		p[0], p[1] = byte(code>>8), byte(code)
		l.buf = codec.AppendMaskedFrame(l.buf[:0], true, codec.OpClose, p[:], l.mask())
		_, _ = c.gc.Write(l.buf)
	}
	if c.state < stClosing {
		c.state = stClosing
	}
	if c.gc != nil && c.state != stClosed {
		_ = c.gc.Close()
	}
}

// CloseGraceful starts the closing handshake: it sends a close frame with
// code and closes the connection when the server's close frame arrives, or
// after wait at the latest. Event loop only.
func (c *Conn) CloseGraceful(code uint16, wait time.Duration) {
	if c.state != stOpen {
		return
	}
	l := c.loop
	var p [2]byte
	p[0], p[1] = byte(code>>8), byte(code)
	l.buf = codec.AppendMaskedFrame(l.buf[:0], true, codec.OpClose, p[:], l.mask())
	_, _ = c.gc.Write(l.buf)
	if c.state == stClosed { // the write failed and closed it
		return
	}
	c.state = stClosing
	time.AfterFunc(wait, func() {
		_ = l.Run(func() {
			if c.state != stClosed {
				_ = c.gc.Close()
			}
		})
	})
}

// SetReadBuffer sets the socket's SO_RCVBUF. Any goroutine after Open.
func (c *Conn) SetReadBuffer(n int) error { return c.gc.SetReadBuffer(n) }
