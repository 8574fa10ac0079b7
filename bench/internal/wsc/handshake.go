package wsc

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxResponse bounds the handshake response we buffer.
const maxResponse = 16 << 10

// appendRequest appends the upgrade request and sets c.key.
func (c *Conn) appendRequest(dst []byte, host string) []byte {
	var raw [16]byte
	for i := 0; i < 16; i += 8 {
		r := c.loop.Rand()
		for j := range 8 {
			raw[i+j] = byte(r >> (8 * j))
		}
	}
	base64.StdEncoding.Encode(c.key[:], raw[:])
	dst = append(dst, "GET "...)
	dst = append(dst, c.Path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, c.key[:]...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n"...)
	if c.offerDeflate {
		dst = append(dst, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// parseResponse looks for a complete response head at the start of b.
// n == 0 means more bytes are needed. status is the HTTP status; err is
// non-nil for anything but a valid 101 with the right accept key.
func (c *Conn) parseResponse(b []byte) (n, status int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxResponse {
			return 0, 0, ErrHandshake
		}
		return 0, 0, nil
	}
	n = end + 4
	head := b[:end]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	// "HTTP/1.1 101 Switching Protocols"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return n, 0, ErrHandshake
	}
	status, _ = strconv.Atoi(string(line[9:12]))
	if status != 101 {
		return n, status, ErrRefused
	}
	var upgrade, accept bool
	want := c.acceptKey()
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, val, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(val, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			accept = bytes.Equal(val, want[:])
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Extensions")):
			// Only what was offered may come back (RFC 6455 4.1).
			if !bytes.HasPrefix(val, []byte("permessage-deflate")) || !c.offerDeflate {
				return n, status, ErrHandshake
			}
			c.dec.Deflate = true
			c.Deflated = true
		}
	}
	if !upgrade || !accept {
		return n, status, ErrHandshake
	}
	return n, status, nil
}

func (c *Conn) acceptKey() (out [28]byte) {
	h := sha1.New()
	h.Write(c.key[:])
	h.Write([]byte(wsGUID))
	base64.StdEncoding.Encode(out[:], h.Sum(nil))
	return out
}
