package scenario

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"partyline/codec"
)

// rawConn is a blocking client connection with a goroutine of its own, for
// the hostile actors that misbehave at the socket level (stop reading,
// dribble bytes) and so cannot live on an event loop.
type rawConn struct {
	nc net.Conn
	br *bufio.Reader
}

// rawDial connects; rcvbuf > 0 sets SO_RCVBUF before the connect so the
// TCP window stays small.
func rawDial(ctx context.Context, addr string, rcvbuf int) (*rawConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 4096)}, nil
}

// handshakeRequest returns an upgrade request and its expected accept key.
func handshakeRequest(host, path string) (req []byte, accept string) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, key)
	return req, base64.StdEncoding.EncodeToString(h[:])
}

// readResponse reads the handshake response and checks it.
func (c *rawConn) readResponse(accept string) error {
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake status %d", resp.StatusCode)
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != accept {
		return errors.New("bad Sec-WebSocket-Accept")
	}
	return nil
}

// handshake sends the request at once and reads the response.
func (c *rawConn) handshake(host, path string) error {
	req, accept := handshakeRequest(host, path)
	if _, err := c.nc.Write(req); err != nil {
		return err
	}
	return c.readResponse(accept)
}

// writeText writes one masked text frame.
func (c *rawConn) writeText(p []byte) error {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	_, err := c.nc.Write(codec.AppendMaskedFrame(nil, true, codec.OpText, p, mask))
	return err
}

// readFrame reads one server frame. Control frames are returned like data
// frames; a ping is not answered.
func (c *rawConn) readFrame() (op byte, payload []byte, err error) {
	var hdr [10]byte
	if _, err = io.ReadFull(c.br, hdr[:2]); err != nil {
		return 0, nil, err
	}
	n := int64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err = io.ReadFull(c.br, hdr[2:4]); err != nil {
			return 0, nil, err
		}
		n = int64(hdr[2])<<8 | int64(hdr[3])
	case 127:
		if _, err = io.ReadFull(c.br, hdr[2:10]); err != nil {
			return 0, nil, err
		}
		n = 0
		for _, b := range hdr[2:10] {
			n = n<<8 | int64(b)
		}
	}
	if hdr[1]&0x80 != 0 || n > 64<<20 {
		return 0, nil, errors.New("bad server frame")
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0] & 0x0f, payload, nil
}

// readUntil reads frames until one text frame contains want, or an error,
// answering nothing. It returns the close code if a close frame came.
func (c *rawConn) readUntil(want []byte, deadline time.Time) (closeCode int, err error) {
	_ = c.nc.SetReadDeadline(deadline)
	defer func() { _ = c.nc.SetReadDeadline(time.Time{}) }()
	for {
		op, p, err := c.readFrame()
		if err != nil {
			return 0, err
		}
		switch op {
		case byte(codec.OpClose):
			code := 1005
			if len(p) >= 2 {
				code = int(p[0])<<8 | int(p[1])
			}
			return code, nil
		case byte(codec.OpText):
			if bytes.Contains(p, want) {
				return 0, nil
			}
			if bytes.Contains(p, []byte(`"error"`)) {
				return 0, fmt.Errorf("error reply: %.80s", p)
			}
		}
	}
}

// tcpState returns the kernel's TCP state of the connection (1 is
// ESTABLISHED), or -1 when it cannot be read.
func (c *rawConn) tcpState() int {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	state := -1
	_ = rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = int(ti.State)
		}
	})
	return state
}

// drainOutcome reads whatever is left (up to the deadline) and reports how
// the connection ended: "close NNNN", "eof", "reset", or "open".
func (c *rawConn) drainOutcome(deadline time.Time) (string, int64) {
	_ = c.nc.SetReadDeadline(deadline)
	var total int64
	for {
		op, p, err := c.readFrame()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return "open", total
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return "eof", total
			case errors.Is(err, syscall.ECONNRESET):
				return "reset", total
			}
			return errKind(err), total
		}
		total += int64(len(p))
		if op == byte(codec.OpClose) {
			code := 1005
			if len(p) >= 2 {
				code = int(p[0])<<8 | int(p[1])
			}
			return fmt.Sprintf("close %d", code), total
		}
	}
}

// errKind names an I/O error without its addresses, so outcomes aggregate.
func errKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && !strings.HasPrefix(s, "error reply") {
		s = s[i+2:]
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}
